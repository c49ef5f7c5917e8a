"""`--log-format json`: every line attache writes is one JSON object with
ts, level and msg, also when the message quotes a broken input file."""
import json

from peers.util import endpoints, wait_until


def lines(attache):
    return [line for line in attache.log().splitlines() if line.strip()]


def test_json_logs_are_one_object_per_line(attache_factory):
    attache = attache_factory({"echo": {"endpoints": endpoints(8080)}}, start=False)
    attache.extra_args = ["--log-format", "json"]
    attache.start()
    # A host file that does not parse: logged as an error naming the file,
    # with quotes and a newline in what it quotes.
    attache.write_hosts_text('services:\n  echo: {endpoints: [{address: "127.0.0.1", port: "x\n')
    wait_until(lambda: any("hosts.yaml" in json.loads(line)["msg"]
                           and json.loads(line)["level"] in ("error", "warning")
                           for line in lines(attache)),
               what="the broken host file logged")
    attache.stop()
    records = [json.loads(line) for line in lines(attache)]  # each line parses alone
    assert records
    for record in records:
        assert set(record) == {"ts", "level", "msg"}, record
        assert record["ts"].endswith("Z") and "T" in record["ts"], record
        assert record["level"] in ("trace", "debug", "info", "warning", "error", "critical")
    messages = [record["msg"] for record in records]
    assert any("serving xDS on 127.0.0.1:" in m for m in messages), messages
    assert any("shutting down" in m for m in messages), messages
