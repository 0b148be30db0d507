// The engine's messages between the ranks of a data-parallel group (engine/engine_group.cpp):
// a request handed to a rank (its prompt and sampling parameters) and what the rank reports back
// for it (the choice updates its stream received, then usage and the error if it finished).
// Plain structs (Usage) travel whole through ByteWriter::put / ByteReader::get.
// Every field of SamplingParams and ChoiceUpdate travels: tests/engine/wire_test.cpp round-trips
// each one set to a non-default value.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "base/byte_stream.h"
#include "engine/request.h"
#include "engine/sampling_params.h"

namespace dsinfer::engine {

void write_params(ByteWriter& w, const SamplingParams& p);
SamplingParams read_params(ByteReader& r);

void write_update(ByteWriter& w, const ChoiceUpdate& u);
ChoiceUpdate read_update(ByteReader& r);

}  // namespace dsinfer::engine
