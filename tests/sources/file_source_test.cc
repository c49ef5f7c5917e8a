#include "sources/file/file_source.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <thread>

#include "config/config_error.h"

namespace attache {
namespace {

namespace fs = std::filesystem;
constexpr char kSource[] = "hosts";

std::string HostFile(const std::string& service, const std::string& address,
                     int port, const std::string& health = "healthy") {
  return "services:\n  " + service +
         ":\n    endpoints:\n      - {address: " + address +
         ", port: " + std::to_string(port) + ", health: " + health + "}\n";
}

// A fresh folder per test, removed afterwards.
class FileSourceFolderTest : public ::testing::Test {
 protected:
  void SetUp() override {
    folder_ = fs::temp_directory_path() /
              ("attache-file-source-" + std::to_string(getpid()) + "-" +
               ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(folder_);
    fs::create_directories(folder_);
  }
  void TearDown() override { fs::remove_all(folder_); }

  // Written aside and renamed in, as config management does.
  void Write(const std::string& name, const std::string& text) {
    const fs::path aside = folder_ / ("." + name + ".tmp");
    std::ofstream(aside) << text;
    fs::rename(aside, folder_ / name);
  }

  const ServiceMap& Services() {
    snapshot_ = catalog_.Current();
    return snapshot_->services;
  }

  // Polls the catalog until `done` holds (the watcher runs on its thread).
  template <typename Condition>
  bool Eventually(Condition done) {
    const auto deadline =
        std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (std::chrono::steady_clock::now() < deadline) {
      if (done(Services())) {
        return true;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    return false;
  }

  // web in a.yaml and db in b.yaml, loaded and watched.
  std::unique_ptr<FileSource> WatchWebAndDb() {
    Write("a.yaml", HostFile("web", "10.0.0.1", 80));
    Write("b.yaml", HostFile("db", "10.0.1.1", 5432));
    auto source = std::make_unique<FileSource>(
        kSource, FileSourceConfig{folder_}, &catalog_);
    source->LoadInitial();
    source->Start();
    return source;
  }

  // Moves db in b.yaml and waits until that shows: the watcher has then
  // handled every event before the edit, too.
  bool MoveDbAndWait() {
    Write("b.yaml", HostFile("db", "10.0.1.2", 5432));
    return Eventually([](const ServiceMap& services) {
      return services.contains("db") &&
             services.at("db")->endpoints.at(0).address == "10.0.1.2";
    });
  }

  fs::path folder_;
  Catalog catalog_{{kSource}};
  std::shared_ptr<const CatalogSnapshot> snapshot_;
};

TEST_F(FileSourceFolderTest, MergesEveryHostFileInTheFolder) {
  Write("a.yaml", HostFile("web", "10.0.0.1", 80));
  Write("b.json",
        R"({"services": {"web": {"endpoints": [{"address": "10.0.0.2", )"
        R"("port": 80}]}, "db": {"endpoints": [{"address": "10.0.1.1", )"
        R"("port": 5432}]}}})");
  Write("notes.txt", "not a host file");
  std::ofstream(folder_ / ".hidden.yaml") << "not: [valid";
  FileSource source(kSource, {folder_}, &catalog_);
  source.LoadInitial();
  const ServiceMap& services = Services();
  ASSERT_EQ(services.size(), 2U);
  EXPECT_EQ(services.at("web")->endpoints.size(), 2U);
  EXPECT_EQ(services.at("db")->endpoints.size(), 1U);
}

TEST_F(FileSourceFolderTest, ABadFileAtStartupNamesTheFile) {
  Write("a.yaml", HostFile("web", "10.0.0.1", 80));
  Write("b.yaml", "services:\n  web:\n    endpoints:\n      - {port: 80}\n");
  FileSource source(kSource, {folder_}, &catalog_);
  try {
    source.LoadInitial();
    FAIL() << "a broken host file was accepted";
  } catch (const ConfigError& error) {
    EXPECT_NE(std::string(error.what()).find("b.yaml"), std::string::npos)
        << error.what();
  }
}

TEST_F(FileSourceFolderTest, FollowsEditsAdditionsAndRemovalsOfFiles) {
  const auto source = WatchWebAndDb();

  Write("a.yaml", HostFile("web", "10.0.0.1", 80, "unhealthy"));
  EXPECT_TRUE(Eventually([](const ServiceMap& services) {
    return services.contains("web") &&
           services.at("web")->endpoints.at(0).health == Health::kUnhealthy;
  }));

  Write("c.yaml", HostFile("cache", "10.0.2.1", 6379));
  EXPECT_TRUE(Eventually(
      [](const ServiceMap& services) { return services.contains("cache"); }));

  fs::remove(folder_ / "b.yaml");
  EXPECT_TRUE(Eventually(
      [](const ServiceMap& services) { return !services.contains("db"); }));
  EXPECT_TRUE(Services().contains("web"));
  source->Stop();
}

TEST_F(FileSourceFolderTest, ABrokenEditKeepsThatFilesLastGoodContent) {
  const auto source = WatchWebAndDb();

  Write("a.yaml", "services:\n  web: [not, a, service]\n");
  // The broken file is rejected, then a good edit of the other file lands:
  // once it shows, the broken one has been read too.
  EXPECT_TRUE(MoveDbAndWait());
  EXPECT_GE(source->rejected(), 1U);
  ASSERT_TRUE(Services().contains("web"));
  EXPECT_EQ(Services().at("web")->endpoints.at(0).address, "10.0.0.1");
  source->Stop();
}

TEST_F(FileSourceFolderTest, AFileIsReadWhenItsWriterClosesItNotBefore) {
  const auto source = WatchWebAndDb();

  // Written in place, and only half of it so far.
  const std::string edit = HostFile("web", "10.0.0.9", 80);
  std::ofstream in_place(folder_ / "a.yaml", std::ios::trunc);
  in_place << edit.substr(0, edit.size() / 2) << std::flush;
  // Once the other file's edit shows, the watcher has handled every event
  // before it: a read of the half-written file would have been rejected.
  EXPECT_TRUE(MoveDbAndWait());
  EXPECT_EQ(source->rejected(), 0U);
  EXPECT_EQ(Services().at("web")->endpoints.at(0).address, "10.0.0.1");

  in_place << edit.substr(edit.size() / 2);
  in_place.close();
  EXPECT_TRUE(Eventually([](const ServiceMap& services) {
    return services.at("web")->endpoints.at(0).address == "10.0.0.9";
  }));
  EXPECT_EQ(source->rejected(), 0U);
  source->Stop();
}

TEST_F(FileSourceFolderTest, ManyEditsInARowAreAllSeen) {
  // A folder that is never quiet must still be read (at most every 50 ms).
  Write("a.yaml", HostFile("web", "10.0.0.1", 1));
  FileSource source(kSource, {folder_}, &catalog_);
  source.LoadInitial();
  source.Start();
  for (int port = 2; port <= 200; ++port) {
    Write("a.yaml", HostFile("web", "10.0.0.1", port));
  }
  EXPECT_TRUE(Eventually([](const ServiceMap& services) {
    return services.at("web")->endpoints.at(0).port == 200;
  }));
  source.Stop();
}

}  // namespace
}  // namespace attache
