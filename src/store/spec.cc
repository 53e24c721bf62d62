#include "store/spec.h"

#include <charconv>

namespace backy::store {

Result<size_t> ResolveSpec(const std::vector<Revision>& revisions,
                           std::string_view spec) {
  const std::string quoted = "'" + std::string(spec) + "'";
  if (spec.empty()) return Status::InvalidArgument("empty revision SPEC");
  if (revisions.empty()) {
    return Status::NotFound("no revision matches " + quoted +
                            ": the repository has no revisions");
  }
  if (spec == "last" || spec == "latest") return revisions.size() - 1;
  size_t n = 0;
  auto [ptr, ec] = std::from_chars(spec.data(), spec.data() + spec.size(), n);
  if (ec == std::errc() && ptr == spec.data() + spec.size()) {
    if (n >= revisions.size()) {
      return Status::NotFound("no revision " + quoted + ": there are only " +
                              std::to_string(revisions.size()) +
                              " revisions (0 is the newest)");
    }
    return revisions.size() - 1 - n;
  }
  for (size_t i = 0; i < revisions.size(); ++i) {
    if (revisions[i].id == spec) return i;
  }
  for (size_t i = revisions.size(); i-- > 0;) {
    if (revisions[i].tags.count(std::string(spec))) return i;
  }
  return Status::NotFound("no revision matches " + quoted +
                          " (not a number, id, tag or 'last')");
}

}  // namespace backy::store
