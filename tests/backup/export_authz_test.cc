// ExportAuthz (the --authz file: what is accepted, every kind of refusal,
// with the file and key named) and AuthorizedExports (LIST and open
// filtered by the JOB of JOB/SPEC; a refused job answered exactly as a job
// that does not exist, checked against the real RepositoryExports).
#include "backup/export_authz.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "backup/revision_export.h"
#include "nbd/mem_export.h"
#include "store/repository.h"
#include "support/test_util.h"

namespace backy::backup {
namespace {

constexpr const char* kPath = "/etc/backy/authz.yaml";

// The status of parsing `text`, which the caller expects to be refused.
Status ParseError(const std::string& text) {
  auto r = ExportAuthz::Parse(text, kPath);
  if (r.ok()) return Status::OK();
  return r.status();
}

// Expects `text` refused with an InvalidArgument on one line that names
// the file, the line and `needle` (the key, or what is wrong).
void ExpectRefused(const std::string& text, const std::string& line,
                   const std::string& needle) {
  SCOPED_TRACE(text.substr(0, 80));
  Status s = ParseError(text);
  ASSERT_FALSE(s.ok()) << "accepted";
  EXPECT_TRUE(s.IsInvalidArgument()) << s.ToString();
  const std::string m = s.Message();
  EXPECT_EQ(m.rfind(std::string(kPath) + ":" + line + ": ", 0), 0u) << m;
  EXPECT_NE(m.find(needle), std::string::npos) << m;
  EXPECT_EQ(m.find('\n'), std::string::npos) << m;
}

TEST(ExportAuthzParseTest, ListsAndStar) {
  auto a = ExportAuthz::Parse(
      "# who may read which disk\n"
      "alice: [vm1, vm7]\n"
      "bob: \"*\"\n"
      "carol: []\n"
      "'CN with spaces':\n"
      "  - vm.2_x-y\n",
      kPath);
  ASSERT_TRUE(a.ok()) << a.status().ToString();
  EXPECT_EQ(a->identity_count(), 4u);
  EXPECT_TRUE(a->MaySee("alice", "vm1"));
  EXPECT_TRUE(a->MaySee("alice", "vm7"));
  EXPECT_FALSE(a->MaySee("alice", "vm2"));
  EXPECT_FALSE(a->MaySee("alice", "vm"));   // not a prefix match
  EXPECT_FALSE(a->MaySee("Alice", "vm1"));  // identities are exact
  EXPECT_TRUE(a->MaySee("bob", "vm1"));
  EXPECT_TRUE(a->MaySee("bob", "anything"));
  EXPECT_FALSE(a->MaySee("bob", ""));  // what names no job
  EXPECT_FALSE(a->MaySee("carol", "vm1"));
  EXPECT_FALSE(a->MaySee("dave", "vm1"));  // not in the file
  EXPECT_FALSE(a->MaySee("", "vm1"));      // no TLS identity
  EXPECT_TRUE(a->MaySee("CN with spaces", "vm.2_x-y"));
}

TEST(ExportAuthzParseTest, EmptyMappingLetsNobodyRead) {
  auto a = ExportAuthz::Parse("{}\n", kPath);
  ASSERT_TRUE(a.ok()) << a.status().ToString();
  EXPECT_EQ(a->identity_count(), 0u);
  EXPECT_FALSE(a->MaySee("alice", "vm1"));
}

TEST(ExportAuthzParseTest, RefusesDocumentsThatAreNotAMapping) {
  ExpectRefused("", "1", "empty");
  ExpectRefused("# only a comment\n", "1", "empty");
  ExpectRefused("alice\n", "1", "expected a mapping");
  ExpectRefused("- alice: [vm1]\n", "1", "expected a mapping");
  ExpectRefused("alice: [vm1\n", "2", "");           // YAML syntax, at its line
  ExpectRefused("alice: [vm1]\nbob: *\n", "2", "");  // "*" must be quoted
}

TEST(ExportAuthzParseTest, RefusesDeepNestingWithoutCrashing) {
  // Hostile input within the size cap: refused, not a stack overflow.
  for (const std::string& open : {std::string("["), std::string("{a: ")}) {
    std::string text = "alice: ";
    for (int i = 0; i < 200000; ++i) text += open;
    Status s = ParseError(text);
    EXPECT_TRUE(s.IsInvalidArgument()) << s.ToString().substr(0, 200);
    EXPECT_EQ(s.Message().rfind(std::string(kPath) + ":", 0), 0u);
  }
}

TEST(ExportAuthzParseTest, RefusesBadIdentities) {
  ExpectRefused("alice: [vm1]\nalice: [vm7]\n", "2", "'alice' is given twice");
  ExpectRefused("\"*\": [vm1]\n", "1", "'*' is not an identity");
  ExpectRefused("\"\": [vm1]\n", "1", "empty identity");
  ExpectRefused("\"al\\x01ice\": [vm1]\n", "1", "'al?ice'");
  // (An explicit key: YAML caps implicit ones at 1024 characters.)
  ExpectRefused("? " + std::string(2000, 'a') + "\n: [vm1]\n", "1",
                "longer than");
  ExpectRefused("? [alice, bob]\n: [vm1]\n", "1", "identity must be a string");
  ExpectRefused("ok: []\n? {a: b}\n: [vm1]\n", "2",
                "identity must be a string");
}

TEST(ExportAuthzParseTest, RefusesBadValues) {
  ExpectRefused("alice: vm1\n", "1", "identity 'alice' must have a list");
  ExpectRefused("alice:\n", "1", "identity 'alice' must have a list");
  ExpectRefused("alice: ~\n", "1", "identity 'alice' must have a list");
  ExpectRefused("x: []\nalice: {vm1: yes}\n", "2",
                "identity 'alice' must have a list");
  ExpectRefused("alice: all\n", "1", "\"*\" for all jobs");
}

TEST(ExportAuthzParseTest, RefusesBadJobNames) {
  ExpectRefused("alice:\n  - vm1\n  - [vm7]\n", "3",
                "identity 'alice': a job name must be a string");
  ExpectRefused("alice: [{vm1: x}]\n", "1", "a job name must be a string");
  ExpectRefused("alice: [vm1, \"*\"]\n", "1", "'*' in a list");
  ExpectRefused("alice: [../etc]\n", "1", "bad job name '../etc'");
  ExpectRefused("alice: [vm1/last]\n", "1", "bad job name 'vm1/last'");
  ExpectRefused("alice: [.hidden]\n", "1", "bad job name '.hidden'");
  ExpectRefused("alice: [-x]\n", "1", "bad job name '-x'");
  ExpectRefused("alice: [\"a b\"]\n", "1", "bad job name 'a b'");
  ExpectRefused("alice: [\"\"]\n", "1", "bad job name ''");
  ExpectRefused("alice: [" + std::string(300, 'v') + "]\n", "1",
                "bad job name");
  ExpectRefused("bob: []\nalice: [vm1, vm7, vm1]\n", "2",
                "identity 'alice': job 'vm1' is listed twice");
}

// ---- Load: the file itself -------------------------------------------------

class ExportAuthzLoadTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/backy-authz-XXXXXX";
    dir_ = ::mkdtemp(tmpl);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  std::string Write(const std::string& name, const std::string& text,
                    mode_t mode = 0644) {
    const std::string p = dir_ + "/" + name;
    std::ofstream(p) << text;
    EXPECT_EQ(::chmod(p.c_str(), mode), 0);
    return p;
  }

  // The error of loading `path`, which must be refused naming it.
  std::string Refusal(const std::string& path) {
    auto r = ExportAuthz::Load(path);
    if (r.ok()) {
      ADD_FAILURE() << path << " accepted";
      return {};
    }
    EXPECT_NE(r.status().Message().find(path), std::string::npos)
        << r.status().ToString();
    return r.status().Message();
  }

  std::string dir_;
};

TEST_F(ExportAuthzLoadTest, ReadsAGoodFile) {
  auto a = ExportAuthz::Load(Write("authz.yaml", "alice: [vm1]\n"));
  ASSERT_TRUE(a.ok()) << a.status().ToString();
  EXPECT_TRUE(a->MaySee("alice", "vm1"));
  // Owner-only is fine too.
  EXPECT_TRUE(ExportAuthz::Load(Write("private", "{}", 0600)).ok());
}

TEST_F(ExportAuthzLoadTest, ParseErrorsNameTheFile) {
  const std::string p = Write("authz.yaml", "alice: [vm1]\nalice: []\n");
  EXPECT_EQ(Refusal(p).rfind(p + ":2: ", 0), 0u);
}

TEST_F(ExportAuthzLoadTest, MissingIsNotFound) {
  auto r = ExportAuthz::Load(dir_ + "/none");
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(r.status().IsNotFound()) << r.status().ToString();
}

TEST_F(ExportAuthzLoadTest, RefusesASymbolicLink) {
  const std::string target = Write("real", "bob: \"*\"\n");
  const std::string link = dir_ + "/link";
  ASSERT_EQ(::symlink(target.c_str(), link.c_str()), 0);
  EXPECT_NE(Refusal(link).find("symbolic link"), std::string::npos);
}

TEST_F(ExportAuthzLoadTest, RefusesWhatIsNotARegularFile) {
  EXPECT_NE(Refusal(dir_).find("not a regular file"), std::string::npos);
  const std::string fifo = dir_ + "/fifo";
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0644), 0);
  // Opening it must not wait for a writer.
  EXPECT_NE(Refusal(fifo).find("not a regular file"), std::string::npos);
}

TEST_F(ExportAuthzLoadTest, RefusesAnOversizedFile) {
  // Valid YAML, one byte over the cap: refused for its size alone.
  std::string text = "alice: [vm1]\n";
  text += "#" + std::string(kMaxAuthzFileSize - text.size() - 2, 'x') + "\n";
  ASSERT_EQ(text.size(), kMaxAuthzFileSize);
  EXPECT_TRUE(ExportAuthz::Load(Write("at-cap", text)).ok());
  text.insert(0, " ");
  EXPECT_NE(Refusal(Write("over", text)).find("larger than 1 MiB"),
            std::string::npos);
  // A sparse file claiming more is refused before it is read.
  const std::string sparse = Write("sparse", "");
  ASSERT_EQ(::truncate(sparse.c_str(), off_t{1} << 40), 0);
  EXPECT_NE(Refusal(sparse).find("larger than 1 MiB"), std::string::npos);
}

TEST_F(ExportAuthzLoadTest, RefusesAFileOthersMayChange) {
  for (mode_t mode : {0664, 0646, 0666, 0620}) {
    SCOPED_TRACE(mode);
    EXPECT_NE(Refusal(Write("w", "{}", mode))
                  .find("writable by group or "
                        "others"),
              std::string::npos);
  }
}

TEST_F(ExportAuthzLoadTest, RefusesAFileOfAnotherUser) {
  if (::geteuid() != 0) GTEST_SKIP() << "chown needs root";
  const std::string p = Write("theirs", "{}");
  ASSERT_EQ(::chown(p.c_str(), 65534, 65534), 0);
  EXPECT_NE(Refusal(p).find("owned by uid 65534"), std::string::npos);
}

// ---- AuthorizedExports -----------------------------------------------------

std::shared_ptr<nbd::Export> Disk(uint8_t fill) {
  return std::make_shared<nbd::MemExport>(std::vector<uint8_t>(4096, fill),
                                          /*writable=*/false);
}

// An export that says for good which job it is, as RevisionExport does.
class NamedExport final : public nbd::MemExport {
 public:
  explicit NamedExport(std::string canonical)
      : MemExport(std::vector<uint8_t>(512, 1), false),
        canonical_(std::move(canonical)) {}
  std::string CanonicalName() const override { return canonical_; }

 private:
  const std::string canonical_;
};

nbd::Client Who(std::string identity) {
  nbd::Client c;
  c.peer = "127.0.0.1:4000";
  c.identity = std::move(identity);
  c.tls = !c.identity.empty();
  return c;
}

std::vector<std::string> Names(nbd::ExportProvider& p, const nbd::Client& c) {
  auto list = p.ListExports(c);
  EXPECT_TRUE(list.ok()) << list.status().ToString();
  std::vector<std::string> out;
  if (list.ok()) {
    for (const auto& e : *list) out.push_back(e.name);
  }
  return out;
}

class AuthorizedExportsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto inner = std::make_unique<nbd::StaticExportProvider>();
    inner->Add("vm1/aaa", Disk(1));
    inner->Add("vm1/bbb", Disk(2));
    inner->Add("vm7/ccc", Disk(7));
    inner->Add("vm10/ddd", Disk(10));
    auto authz =
        ExportAuthz::Parse("alice: [vm1]\nbob: \"*\"\ncarol: []\n", kPath);
    ASSERT_TRUE(authz.ok()) << authz.status().ToString();
    exports_ = std::make_unique<AuthorizedExports>(std::move(inner),
                                                   std::move(*authz));
  }
  std::unique_ptr<AuthorizedExports> exports_;
};

TEST_F(AuthorizedExportsTest, ListShowsOnlyGrantedJobs) {
  using V = std::vector<std::string>;
  EXPECT_EQ(Names(*exports_, Who("alice")), (V{"vm1/aaa", "vm1/bbb"}));
  EXPECT_EQ(Names(*exports_, Who("bob")),
            (V{"vm1/aaa", "vm1/bbb", "vm7/ccc", "vm10/ddd"}));
  EXPECT_EQ(Names(*exports_, Who("carol")), V{});
  EXPECT_EQ(Names(*exports_, Who("mallory")), V{});
  EXPECT_EQ(Names(*exports_, Who("")), V{});
}

TEST_F(AuthorizedExportsTest, OpensOnlyGrantedJobs) {
  auto mine = exports_->OpenExport("vm1/bbb", Who("alice"));
  ASSERT_TRUE(mine.ok()) << mine.status().ToString();
  std::vector<uint8_t> buf(16);
  ASSERT_OK((*mine)->Read(0, buf));
  EXPECT_EQ(buf[0], 2);
  EXPECT_TRUE(exports_->OpenExport("vm7/ccc", Who("bob")).ok());
  for (const auto& [who, name] :
       std::vector<std::pair<std::string, std::string>>{{"alice", "vm7/ccc"},
                                                        {"alice", "vm10/ddd"},
                                                        {"carol", "vm1/aaa"},
                                                        {"mallory", "vm1/aaa"},
                                                        {"", "vm1/aaa"}}) {
    SCOPED_TRACE(who + " " + name);
    auto r = exports_->OpenExport(name, Who(who));
    ASSERT_FALSE(r.ok());
    EXPECT_TRUE(r.status().IsNotFound()) << r.status().ToString();
    const std::string job = name.substr(0, name.find('/'));
    EXPECT_EQ(r.status().ToString(),
              Status::NotFound("no such job '" + job + "'", name).ToString());
  }
}

TEST_F(AuthorizedExportsTest, ANameWithoutJobIsTheInnerProvidersToRefuse) {
  // StaticExportProvider opens its first export (vm1/aaa) for "": that
  // export names no job, so nobody is given it through a bare name.
  auto r = exports_->OpenExport("", Who("bob"));
  EXPECT_FALSE(r.ok());
  // A name the inner provider does not know: its own answer.
  r = exports_->OpenExport("vm1", Who("alice"));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().ToString(),
            Status::NotFound("no such export", "vm1").ToString());
}

TEST(AuthorizedExportsCanonicalTest, AnExportOfAnotherJobIsRefused) {
  // An inner provider that resolves names to other jobs' exports (as a
  // bare name or an alias might): the export's canonical JOB decides.
  auto inner = std::make_unique<nbd::StaticExportProvider>();
  inner->Add("vm1/alias", std::make_shared<NamedExport>("vm7/rev"));
  inner->Add("vm1/own", std::make_shared<NamedExport>("vm1/rev"));
  auto authz = ExportAuthz::Parse("alice: [vm1]\n", kPath);
  ASSERT_TRUE(authz.ok());
  AuthorizedExports exports(std::move(inner), std::move(*authz));
  auto r = exports.OpenExport("vm1/alias", Who("alice"));
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(r.status().IsNotFound());
  EXPECT_TRUE(exports.OpenExport("vm1/own", Who("alice")).ok());
}

// The promise that matters: with the real provider over a directory of
// repositories, a refused job gets the very answer of a job that is not
// there at all.
TEST(AuthorizedExportsRepositoryTest, RefusalEqualsTheAnswerForNoSuchJob) {
  char tmpl[] = "/tmp/backy-authz-repos-XXXXXX";
  const std::string root = ::mkdtemp(tmpl);
  store::RepositoryConfig config;
  config.source = {{"type", "file"}, {"filename", "/nonexistent"}};
  ASSERT_OK(store::Repository::Init(root + "/with/vm1", config));
  ASSERT_OK(store::Repository::Init(root + "/with/vm7", config));
  ASSERT_OK(store::Repository::Init(root + "/without/vm1", config));

  auto with = RepositoryExports::Open(root + "/with", 1 << 20);
  ASSERT_TRUE(with.ok()) << with.status().ToString();
  auto without = RepositoryExports::Open(root + "/without", 1 << 20);
  ASSERT_TRUE(without.ok()) << without.status().ToString();
  ASSERT_FALSE((*with)->single_repository());
  auto authz = ExportAuthz::Parse("alice: [vm1]\n", kPath);
  ASSERT_TRUE(authz.ok());
  AuthorizedExports exports(std::move(*with), std::move(*authz));

  for (const std::string name : {"vm7/last", "vm7/0", "vm7/", "vm7/x/y"}) {
    SCOPED_TRACE(name);
    auto refused = exports.OpenExport(name, Who("alice"));
    auto absent = (*without)->OpenExport(name, Who("alice"));
    ASSERT_FALSE(refused.ok());
    ASSERT_FALSE(absent.ok());
    EXPECT_EQ(refused.status().ToString(), absent.status().ToString());
  }
  // Bare names: the inner provider's answer, unchanged.
  for (const std::string name : {"vm7", ""}) {
    auto refused = exports.OpenExport(name, Who("alice"));
    auto absent = (*without)->OpenExport(name, Who("alice"));
    ASSERT_FALSE(refused.ok());
    ASSERT_FALSE(absent.ok());
    EXPECT_EQ(refused.status().ToString(), absent.status().ToString());
  }
  // A granted job reaches the repository (which has no revision yet).
  auto mine = exports.OpenExport("vm1/last", Who("alice"));
  ASSERT_FALSE(mine.ok());
  EXPECT_EQ(mine.status().Message().find("no such job"), std::string::npos)
      << mine.status().ToString();
  std::filesystem::remove_all(root);
}

}  // namespace
}  // namespace backy::backup
