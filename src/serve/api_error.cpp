#include "serve/api_error.h"

#include <nlohmann/json.hpp>

#include "serve/protocol.h"

namespace dsinfer::serve {

std::string error_body(int status, const std::string& message, const std::string& type, const std::string& param,
                       const std::string& code) {
  nlohmann::json e = {{"message", message},
                      {"type", type},
                      {"param", param.empty() ? nlohmann::json(nullptr) : nlohmann::json(param)},
                      {"code", code.empty() ? nlohmann::json(nullptr) : nlohmann::json(code)}};
  return dump(nlohmann::json{{"error", e}});
}

}  // namespace dsinfer::serve
