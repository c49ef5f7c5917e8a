"""xds.tls problems stop `attache validate` and `attache serve` with the
config file, the key and the problem (exit status 1), naming files by their
path and never showing what is in them."""
import os
import pathlib
import subprocess

import yaml

from tls_support import openssl, tls_config

ATTACHE_BIN = os.environ.get(
    "ATTACHE_BIN", str(pathlib.Path(__file__).resolve().parents[2] / "build" / "attache"))


def run(*args):
    return subprocess.run([ATTACHE_BIN, *args], capture_output=True, text=True, timeout=30)


def set_tls(attache, tls):
    config = yaml.safe_load(attache.config_path.read_text())
    config["xds"]["tls"] = tls
    attache.config_path.write_text(yaml.safe_dump(config))


def test_validate_checks_the_tls_files(pki, tls_attache):
    ca, other = pki.ca("ca"), pki.ca("other")
    server = ca.issue_server()
    attache = tls_attache(tls_config("certs/tls.crt", "certs/tls.key", "certs/ca.crt"),
                          start=False)
    folder = attache.workdir / "certs"
    folder.mkdir()
    config = str(attache.config_path)

    def problem(key):
        result = run("validate", "--config", config)
        assert result.returncode == 1, result
        assert result.stdout == ""
        assert "BEGIN" not in result.stderr
        prefix = f"attache: {config}: xds.tls.{key}: "
        assert result.stderr.startswith(prefix), result.stderr
        return result.stderr[len(prefix):].strip()

    # Relative paths are relative to the config file's folder.
    assert problem("cert") == f"cannot read {folder}/tls.crt: No such file or directory"
    (folder / "tls.crt").write_text("hello\n")
    (folder / "tls.key").write_bytes(server.key.read_bytes())
    (folder / "ca.crt").write_bytes(ca.cert.read_bytes())
    assert problem("cert") == f"{folder}/tls.crt holds no PEM certificate"
    (folder / "tls.crt").write_bytes(server.cert.read_bytes())
    (folder / "tls.key").write_bytes(other.key.read_bytes())
    assert problem("key") == (f"{folder}/tls.key does not match the certificate in "
                              f"{folder}/tls.crt")
    openssl("pkcs8", "-topk8", "-in", str(server.key), "-out", str(folder / "tls.key"),
             "-passout", "pass:secret", "-v2", "aes-256-cbc")
    assert problem("key") == (f"{folder}/tls.key is encrypted; attache needs the key "
                              "without a passphrase")
    (folder / "tls.key").write_bytes(server.key.read_bytes())
    (folder / "ca.crt").write_bytes(b"\x30\x82\x01\x0a")  # DER, not PEM
    assert problem("client_ca") == f"{folder}/ca.crt holds no PEM certificate"
    (folder / "ca.crt").unlink()
    (folder / "ca.crt").mkdir()
    assert problem("client_ca") == f"{folder}/ca.crt is a folder, not a file"
    (folder / "ca.crt").rmdir()
    (folder / "ca.crt").write_bytes(ca.cert.read_bytes())

    result = run("validate", "--config", config)
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"{config}: ok (1 sources)\n"


def test_serve_refuses_to_start_with_bad_tls_files(pki, tls_attache):
    ca, other = pki.ca("ca"), pki.ca("other")
    server = ca.issue_server()
    attache = tls_attache(tls_config(server.cert, other.issue_server().key), start=False)
    result = run("serve", "--config", str(attache.config_path))
    assert result.returncode == 1, result
    assert (f"attache: {attache.config_path}: xds.tls.key: "
            f"{other.folder}/other-server.key does not match the certificate in "
            f"{server.cert}") in result.stderr
    assert "BEGIN" not in result.stderr + result.stdout

    set_tls(attache, {"cert": str(server.cert), "key": str(server.key), "refresh": "100ms"})
    result = run("serve", "--config", str(attache.config_path))
    assert result.returncode == 1, result
    assert (f"attache: {attache.config_path}: xds.tls.refresh: must be between 1s and "
            "3600s, got 100ms") in result.stderr


def test_plaintext_is_logged_as_such(attache_factory):
    attache = attache_factory({"echo": {"endpoints": []}})
    assert "xDS: plaintext (no xds.tls)" in attache.log()
