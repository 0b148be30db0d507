// A test fixture run once per kernel ISA: it forces the ISA for the test (kernels/cpu_features.h)
// and skips AVX-512 on CPUs without it. Derive a suite from it and instantiate it with
// DSINFER_ISA_SUITE(Suite).
#pragma once

#include <gtest/gtest.h>

#include <string>

#include "kernels/cpu_features.h"

namespace dsinfer::kernels {

class IsaTest : public ::testing::TestWithParam<Isa> {
 protected:
  void SetUp() override {
    if (GetParam() == Isa::kAvx512 && !cpu_has_avx512()) GTEST_SKIP() << "no AVX-512 on this CPU";
    set_isa_override(GetParam());
  }
  void TearDown() override { reset_isa_override(); }
};

#define DSINFER_ISA_SUITE(Suite)                                                            \
  INSTANTIATE_TEST_SUITE_P(Isas, Suite, ::testing::Values(Isa::kAvx2, Isa::kAvx512),        \
                           [](const ::testing::TestParamInfo<Isa>& i) { return std::string(isa_name(i.param)); })

}  // namespace dsinfer::kernels
