// TempRepository: a repository (file source) initialised in a fresh
// temporary directory, removed with the object. For unit tests that work
// on a real repository on disk.
#pragma once

#include <stdlib.h>

#include <filesystem>
#include <memory>
#include <string>

#include "store/directory_repository.h"
#include "support/test_util.h"

namespace backy::store {

class TempRepository {
 public:
  TempRepository() {
    char tmpl[] = "/tmp/backy-test-XXXXXX";
    root_ = ::mkdtemp(tmpl);
    dir_ = root_ + "/repo";
    RepositoryConfig config;
    config.source = {{"type", "file"}, {"filename", "/nonexistent"}};
    EXPECT_OK(Repository::Init(dir_, config));
    auto r = DirectoryRepository::Open(dir_);
    EXPECT_OK(r.status());
    if (r.ok()) repo_ = std::move(*r);
  }
  ~TempRepository() { std::filesystem::remove_all(root_); }
  TempRepository(const TempRepository&) = delete;
  TempRepository& operator=(const TempRepository&) = delete;

  const std::string& dir() const { return dir_; }
  // Gives the open repository to the test (once).
  std::unique_ptr<DirectoryRepository> Take() { return std::move(repo_); }

 private:
  std::string root_, dir_;
  std::unique_ptr<DirectoryRepository> repo_;
};

}  // namespace backy::store
