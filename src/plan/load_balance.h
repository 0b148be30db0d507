// Load imbalance across the GPUs of an expert-parallel unit. Every dispatch and combine is an
// all-to-all, so each layer advances at the pace of the slowest GPU: the unit runs as if every
// GPU carried the largest load. Two sources are modelled: a systematic expert imbalance that the
// expert-placement balancer (EPLB) leaves behind (an input), and random fluctuation around the
// mean, whose expected maximum over n GPUs is E[max of n standard normals] standard deviations.
#pragma once

namespace dsinfer::plan {

// E[max(Z_1..Z_n)] for independent standard normals; 0 for n <= 1. Numerical integration.
double expected_max_standard_normal(int n);

// Slowest-GPU over mean MoE load: systematic * (1 + E[max] / sqrt(pairs)), the second factor
// being Poisson noise of `pairs_per_gpu` (token, expert) pairs landing on each of `gpus` GPUs.
double expert_imbalance_factor(double systematic, double pairs_per_gpu, int gpus);

// Slowest-GPU over mean attention time when each GPU holds `requests` requests whose lengths
// have coefficient of variation `length_cv` (the sum's CV is length_cv / sqrt(requests)).
double attention_straggler_factor(double length_cv, double requests, int gpus);

}  // namespace dsinfer::plan
