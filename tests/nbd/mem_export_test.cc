#include "nbd/mem_export.h"

#include <gtest/gtest.h>

#include "support/test_util.h"

namespace backy::nbd {
namespace {

std::vector<uint8_t> Pattern(size_t n, uint8_t seed) {
  std::vector<uint8_t> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = static_cast<uint8_t>(seed + i * 7 + 1);
  return v;
}

TEST(MemExportTest, ReadReturnsContent) {
  auto data = Pattern(10000, 3);
  MemExport exp(data, false, "desc");
  EXPECT_EQ(exp.Size(), 10000u);
  EXPECT_TRUE(exp.IsReadOnly());
  EXPECT_EQ(exp.Description(), "desc");
  std::vector<uint8_t> buf(100);
  ASSERT_OK(exp.Read(4050, buf));
  EXPECT_TRUE(std::equal(buf.begin(), buf.end(), data.begin() + 4050));
}

TEST(MemExportTest, BlockStatusReportsZeroBlocksAsHoles) {
  std::vector<uint8_t> data(4 * MemExport::kZeroBlock, 0);
  data[MemExport::kZeroBlock + 5] = 1;  // block 1 has data
  MemExport exp(data, false);
  std::vector<ExportExtent> ext;
  ASSERT_OK(exp.BlockStatus(0, exp.Size(), &ext));
  const uint64_t b = MemExport::kZeroBlock;
  ASSERT_EQ(ext.size(), 3u);
  EXPECT_EQ(ext[0], (ExportExtent{0, b, true, true}));
  EXPECT_EQ(ext[1], (ExportExtent{b, b, false, false}));
  EXPECT_EQ(ext[2], (ExportExtent{2 * b, 2 * b, true, true}));
}

TEST(MemExportTest, WritesAreVisible) {
  MemExport exp(std::vector<uint8_t>(8192), true);
  EXPECT_FALSE(exp.IsReadOnly());
  auto p = Pattern(100, 9);
  ASSERT_OK(exp.Write(10, p));
  std::vector<uint8_t> buf(100);
  ASSERT_OK(exp.Read(10, buf));
  EXPECT_EQ(buf, p);
  ASSERT_OK(exp.WriteZeroes(10, 50));
  ASSERT_OK(exp.Read(10, buf));
  EXPECT_EQ(buf[49], 0);
  EXPECT_EQ(buf[50], p[50]);
}

TEST(StaticExportProviderTest, ListsAndOpensByName) {
  StaticExportProvider provider;
  provider.Add("a", std::make_shared<MemExport>(std::vector<uint8_t>(10), false,
                                                "first"));
  provider.Add("b", std::make_shared<MemExport>(std::vector<uint8_t>(20), false,
                                                "second"));
  auto list = provider.ListExports({});
  ASSERT_TRUE(list.ok());
  ASSERT_EQ(list->size(), 2u);
  EXPECT_EQ((*list)[1].name, "b");
  EXPECT_EQ((*list)[1].description, "second");

  auto b = provider.OpenExport("b", {});
  ASSERT_TRUE(b.ok());
  EXPECT_EQ((*b)->Size(), 20u);
  auto def = provider.OpenExport("", {});
  ASSERT_TRUE(def.ok());
  EXPECT_EQ((*def)->Size(), 10u);
  provider.SetDefault("b");
  EXPECT_EQ((*provider.OpenExport("", {}))->Size(), 20u);

  auto missing = provider.OpenExport("nope", {});
  ASSERT_FALSE(missing.ok());
  EXPECT_TRUE(missing.status().IsNotFound());
  EXPECT_NE(missing.status().Message().find("nope"), std::string::npos);
}

}  // namespace
}  // namespace backy::nbd
