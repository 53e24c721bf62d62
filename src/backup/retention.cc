#include "backup/retention.h"

#include <map>

namespace backy::backup {

std::vector<ExpireChange> PlanExpire(const std::vector<store::Revision>& revisions,
                                     const store::Schedule& schedule) {
  std::vector<ExpireChange> out;
  if (schedule.empty()) return out;
  const size_t n = revisions.size();
  const size_t protected_from = n > schedule.min_keep ? n - schedule.min_keep : 0;
  std::map<std::string, uint32_t> seen;  // tag → newer revisions carrying it
  std::vector<ExpireChange> changes(n);
  for (size_t i = n; i-- > 0;) {
    const store::Revision& r = revisions[i];
    ExpireChange& c = changes[i];
    c.id = r.id;
    for (const auto& tag : r.tags) {
      const uint32_t rank = seen[tag]++;
      if (tag.starts_with("manual:")) continue;
      auto it = schedule.tags.find(tag);
      if (it == schedule.tags.end() || rank >= it->second.keep) {
        c.removed_tags.insert(tag);
      }
    }
    if (i >= protected_from) {
      c.removed_tags.clear();
      continue;
    }
    c.remove_revision = c.removed_tags.size() == r.tags.size();
  }
  for (auto& c : changes) {
    if (!c.removed_tags.empty() || c.remove_revision) out.push_back(std::move(c));
  }
  return out;
}

}  // namespace backy::backup
