// ParallelFor: every item runs exactly once, the first error wins and stops
// further claims, a stop predicate ends the loop early.
#include "backup/parallel_for.h"

#include <atomic>
#include <mutex>
#include <vector>

#include "support/test_util.h"

namespace backy::backup {
namespace {

TEST(ParallelForTest, RunsEveryItemOnce) {
  std::vector<std::atomic<int>> runs(1000);
  std::atomic<unsigned> max_worker{0};
  ASSERT_OK(ParallelFor(runs.size(), 4, [&](unsigned w, size_t i) {
    ++runs[i];
    unsigned m = max_worker.load();
    while (w > m && !max_worker.compare_exchange_weak(m, w)) {
    }
    return Status::OK();
  }));
  for (size_t i = 0; i < runs.size(); ++i) EXPECT_EQ(runs[i], 1) << i;
  EXPECT_LT(max_worker.load(), 4u);
}

TEST(ParallelForTest, NoItemsRunsNothing) {
  bool ran = false;
  ASSERT_OK(ParallelFor(0, 4, [&](unsigned, size_t) {
    ran = true;
    return Status::OK();
  }));
  EXPECT_FALSE(ran);
}

TEST(ParallelForTest, FirstErrorWinsAndStopsClaims) {
  // One worker: items run in order, so the error of item 10 is the first
  // and nothing after it runs.
  std::vector<size_t> done;
  Status s = ParallelFor(100, 1, [&](unsigned, size_t i) {
    done.push_back(i);
    if (i >= 10) return Status::IOError("item " + std::to_string(i));
    return Status::OK();
  });
  EXPECT_TRUE(s.IsIOError()) << s.ToString();
  EXPECT_NE(s.ToString().find("item 10"), std::string::npos) << s.ToString();
  EXPECT_EQ(done.size(), 11u);
}

TEST(ParallelForTest, AnyWorkersErrorIsReturned) {
  Status s = ParallelFor(1000, 4, [&](unsigned, size_t i) {
    if (i == 500) return Status::Corruption("item 500");
    return Status::OK();
  });
  EXPECT_TRUE(s.IsCorruption()) << s.ToString();
}

TEST(ParallelForTest, ContinueRunsEveryItemAndKeepsFirstError) {
  std::atomic<size_t> runs{0};
  Status s = ParallelFor(
      50, 1,
      [&](unsigned, size_t i) {
        ++runs;
        if (i % 10 == 3) return Status::Corruption("item " + std::to_string(i));
        return Status::OK();
      },
      {}, OnError::kContinue);
  EXPECT_EQ(runs.load(), 50u);
  EXPECT_NE(s.ToString().find("item 3"), std::string::npos) << s.ToString();
}

TEST(ParallelForTest, StopEndsTheLoop) {
  std::atomic<bool> cancel{false};
  std::atomic<size_t> runs{0};
  Status s = ParallelFor(
      1000, 1,
      [&](unsigned, size_t i) {
        ++runs;
        if (i == 5) cancel = true;
        return Status::OK();
      },
      [&] { return cancel.load(); });
  EXPECT_OK(s);  // a stop is no error: the caller knows why it stopped
  EXPECT_EQ(runs.load(), 6u);  // checked before each claim
}

}  // namespace
}  // namespace backy::backup
