// Hardware profiles for the performance model, read from data/hardware.json: per-GPU peak
// FLOP/s, HBM and interconnect bandwidths; DeepEP's published dispatch/combine measurements
// (the reference every profile's communication is scaled from); and the fractions of peak that
// published kernels reach. All values in SI units (FLOP/s, bytes/s, bytes, seconds) once parsed.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json_fwd.hpp>

namespace dsinfer::plan {

struct HardwareProfile {
  std::string name;
  std::string description;
  double fp8_flops = 0;        // dense tensor-core FLOP/s
  double bf16_flops = 0;
  double hbm_bandwidth = 0;    // bytes/s
  double hbm_bytes = 0;
  double nvlink_bandwidth = 0; // bytes/s per direction
  double nic_bandwidth = 0;    // scale-out RDMA bytes/s per GPU
  int sms = 0;
  int gpus_per_node = 0;
  std::vector<std::string> sources;
};

// One row of a DeepEP table: bandwidth as DeepEP counts bytes (see comm_model.h).
struct EpBandwidth {
  int ep = 0;
  double dispatch = 0;  // bytes/s
  double combine = 0;
};

struct DeepEpReference {
  double reference_nic = 0;     // bytes/s of the NIC the tables were measured with
  double reference_nvlink = 0;
  EpBandwidth normal_intranode;
  std::vector<EpBandwidth> normal_internode;  // ascending ep
  std::vector<EpBandwidth> low_latency;       // ascending ep
  int low_latency_tokens = 0;
  int normal_kernel_sms = 0;  // SMs the normal kernels hold while they run
};

struct KernelEfficiency {
  double gemm_compute = 0;
  double gemm_memory = 0;
  double attention_decode_compute = 0;
  double attention_decode_memory = 0;
  double elementwise_memory = 0;
  double end_to_end = 0;
  std::vector<std::pair<double, double>> attention_prefill_by_length;  // (tokens, fraction), ascending

  // Fraction of BF16 peak a prefill attention kernel reaches at this mean context length:
  // interpolated in log(length), clamped at the table's ends.
  double attention_prefill(double tokens) const;
};

struct HardwareCatalog {
  std::vector<HardwareProfile> profiles;
  DeepEpReference deepep;
  KernelEfficiency kernels;
  std::string origin;

  // Case-insensitive; throws listing the known names.
  const HardwareProfile& profile(const std::string& name) const;
  std::vector<std::string> names() const;
};

HardwareCatalog parse_hardware(const nlohmann::json& j, const std::string& origin);
HardwareCatalog load_hardware(const std::string& path);

// Candidate locations of data/hardware.json, in search order, for a binary at `exe_path`:
// $DSINFER_HARDWARE_FILE, then data/ beside or above the binary's folder, then ./data.
std::vector<std::string> hardware_search_paths(const std::string& exe_path);
// The first candidate that exists; throws listing where it looked.
std::string find_hardware_file(const std::string& exe_path);

}  // namespace dsinfer::plan
