// A non-owning reference to a callable, for parameters that are called during the call and not
// kept. A lambda passed as `const std::function<...>&` is copied into a std::function first, and
// any capture larger than two pointers goes to the heap: every parallel kernel call in a forward
// step allocated. FunctionRef stores a pointer to the caller's callable and a trampoline.
#pragma once

#include <type_traits>
#include <utility>

namespace dsinfer {

template <typename Signature>
class FunctionRef;

template <typename R, typename... Args>
class FunctionRef<R(Args...)> {
 public:
  template <typename F, typename = std::enable_if_t<!std::is_same_v<std::decay_t<F>, FunctionRef> &&
                                                    std::is_invocable_r_v<R, F&, Args...>>>
  FunctionRef(F&& f)  // NOLINT(google-explicit-constructor): converts like std::function does
      : object_(const_cast<void*>(static_cast<const void*>(std::addressof(f)))),
        call_([](void* o, Args... args) -> R {
          return (*static_cast<std::remove_reference_t<F>*>(o))(std::forward<Args>(args)...);
        }) {}

  R operator()(Args... args) const { return call_(object_, std::forward<Args>(args)...); }

 private:
  void* object_;
  R (*call_)(void*, Args...);
};

}  // namespace dsinfer
