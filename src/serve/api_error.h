// Errors in OpenAI's JSON shape: {"error": {"message", "type", "param", "code"}} with the HTTP
// status that goes with them. Request parsing throws ApiError; the server turns it into a reply.
#pragma once

#include <string>

#include "base/error.h"
#include "serve/http_server.h"

namespace dsinfer::serve {

class ApiError : public Error {
 public:
  ApiError(int status, std::string message, std::string type = "invalid_request_error", std::string param = {},
           std::string code = {})
      : Error(message), status(status), type(std::move(type)), param(std::move(param)), code(std::move(code)) {}
  int status;
  std::string type, param, code;
};

// The JSON body for an error reply.
std::string error_body(int status, const std::string& message, const std::string& type, const std::string& param = {},
                       const std::string& code = {});

// Replies: a JSON body with a status, and an error in the shape above.
http::Response json_response(int status, std::string body);
http::Response error_response(int status, const std::string& message, const std::string& type,
                              const std::string& param = {}, const std::string& code = {});

}  // namespace dsinfer::serve
