// Test helpers shared by all test binaries (leveldb util/testutil.h).
#pragma once

#include <gtest/gtest.h>

#include "store/status.h"

#define ASSERT_OK(expr)                    \
  do {                                     \
    ::backy::Status _s = (expr);           \
    ASSERT_TRUE(_s.ok()) << _s.ToString(); \
  } while (0)

#define EXPECT_OK(expr)                    \
  do {                                     \
    ::backy::Status _s = (expr);           \
    EXPECT_TRUE(_s.ok()) << _s.ToString(); \
  } while (0)
