// A test fixture run once per kernel path (kernels/cpu_features.h): every path is instantiated,
// and the ones this CPU cannot run are skipped, so each machine checks every path it can
// execute against the scalar references. Derive a suite from it and instantiate it with
// DSINFER_ISA_SUITE(Suite).
#pragma once

#include <gtest/gtest.h>

#include <string>

#include "kernels/cpu_features.h"

namespace dsinfer::kernels {

inline void force_isa_or_skip(Isa isa) {
  if (!isa_supported(isa)) GTEST_SKIP() << isa_name(isa) << " does not run here (missing: " << isa_missing(isa) << ")";
  set_isa_override(isa);
}

class IsaTest : public ::testing::TestWithParam<Isa> {
 protected:
  void SetUp() override { force_isa_or_skip(GetParam()); }
  void TearDown() override { reset_isa_override(); }
};

#define DSINFER_ALL_ISAS ::testing::Values(Isa::kGeneric, Isa::kAvx2, Isa::kAvx512, Isa::kNeon)

#define DSINFER_ISA_SUITE(Suite)                                        \
  INSTANTIATE_TEST_SUITE_P(Isas, Suite, DSINFER_ALL_ISAS,                \
                           [](const ::testing::TestParamInfo<Isa>& i) { return std::string(isa_name(i.param)); })

}  // namespace dsinfer::kernels
