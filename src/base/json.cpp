#include "base/json.h"

#include "base/error.h"

namespace dsinfer {

namespace {

// Thrown from the parser callback, which may not return an error; caught below and re-thrown as
// Error, so nothing else can be confused with it.
struct TooDeep {};

}  // namespace

nlohmann::json parse_json(std::string_view text, const std::string& what, int max_depth) {
  // `depth` is the number of containers enclosing the value the event is about, so a container
  // starting at depth max_depth would be nesting level max_depth + 1.
  auto limit = [max_depth](int depth, nlohmann::json::parse_event_t event, nlohmann::json&) {
    if ((event == nlohmann::json::parse_event_t::object_start || event == nlohmann::json::parse_event_t::array_start) &&
        depth >= max_depth)
      throw TooDeep{};
    return true;
  };
  try {
    return nlohmann::json::parse(text.begin(), text.end(), limit);
  } catch (const TooDeep&) {
    fail(what, " nests JSON deeper than ", max_depth, " levels");
  } catch (const nlohmann::json::exception& e) {
    fail(what, " is not valid JSON: ", e.what());
  }
}

}  // namespace dsinfer
