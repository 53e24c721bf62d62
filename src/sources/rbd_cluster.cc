#include "sources/rbd_cluster.h"

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <string>
#include <utility>

namespace backy::sources {

Status RbdError(int r, std::string_view what, std::string_view object) {
  const int err = r < 0 ? -r : r;
  std::string msg(what);
  msg += ": ";
  msg += std::strerror(err);
  switch (err) {
    case ENOENT:
      return Status::NotFound(msg, object);
    case EEXIST:
    case EINVAL:
    case ENAMETOOLONG:
    case ERANGE:
      return Status::InvalidArgument(msg, object);
    case EBUSY:
    case EWOULDBLOCK:
      return Status::Busy(msg, object);
    case ENOSPC:
    case EDQUOT:
      return Status::NoSpace(msg, object);
    case EINTR:
      return Status::Interrupted(msg, object);
    case EOPNOTSUPP:
      return Status::NotSupported(msg, object);
    case EPERM:
    case EACCES:
      return Status::IOError(msg + " (check client id, keyring and caps)",
                             object);
    default:
      return Status::IOError(msg, object);
  }
}

Status RbdConnection::Open(const RbdConfig& c) {
  const std::string object = RbdImageName(c);
  const std::string name =
      "client." + (c.client_id.empty() ? std::string("admin") : c.client_id);
  int r = rados_create2(&cluster_, "ceph", name.c_str(), 0);
  if (r < 0) {
    cluster_ = nullptr;
    return RbdError(r, "creating a Ceph client handle for " + name, object);
  }
  // An explicitly named configuration must be readable. Without one,
  // Ceph's default search may find nothing when $CEPH_ARGS carries
  // mon_host instead.
  std::string conf = c.conf_path;
  if (conf.empty()) {
    const char* env = std::getenv("CEPH_CONF");
    if (env != nullptr) conf = env;
  }
  r = rados_conf_read_file(cluster_, conf.empty() ? nullptr : conf.c_str());
  if (r < 0 && !conf.empty()) {
    return RbdError(r, "reading Ceph configuration " + conf, object);
  }
  r = rados_conf_parse_env(cluster_, nullptr);  // $CEPH_ARGS
  if (r < 0) return RbdError(r, "parsing $CEPH_ARGS", object);
  if (!c.keyring.empty()) {
    r = rados_conf_set(cluster_, "keyring", c.keyring.c_str());
    if (r < 0) return RbdError(r, "setting keyring " + c.keyring, object);
  }
  const std::string connect_timeout = std::to_string(c.connect_timeout_s);
  const std::string op_timeout = std::to_string(c.op_timeout_s);
  const std::pair<const char*, const char*> settings[] = {
      {"client_mount_timeout", connect_timeout.c_str()},
      {"rados_mon_op_timeout", connect_timeout.c_str()},
      {"rados_osd_op_timeout", op_timeout.c_str()},
      // Backups read each byte once and restores flush at the end: the
      // cache would only add copies.
      {"rbd_cache", "false"},
  };
  for (const auto& [key, value] : settings) {
    r = rados_conf_set(cluster_, key, value);
    if (r < 0) return RbdError(r, std::string("setting ") + key, object);
  }
  r = rados_connect(cluster_);
  if (r < 0) {
    char mon_host[512] = "";
    if (rados_conf_get(cluster_, "mon_host", mon_host, sizeof(mon_host)) < 0) {
      mon_host[0] = '\0';
    }
    std::string what = "connecting to the Ceph cluster";
    what += mon_host[0] != '\0' ? std::string(" at ") + mon_host
                                : std::string(" (no mon_host configured)");
    what += " as " + name;
    if (!conf.empty()) what += " using " + conf;
    if (r == -ETIMEDOUT) {
      what += " (gave up after " + connect_timeout + " s)";
    }
    return RbdError(r, what, object);
  }
  r = rados_ioctx_create(cluster_, c.pool.c_str(), &io_);
  if (r < 0) {
    io_ = nullptr;
    if (r == -ENOENT) {
      return Status::NotFound("pool '" + c.pool + "' does not exist", object);
    }
    return RbdError(r, "opening pool " + c.pool, object);
  }
  if (!c.rbd_namespace.empty()) {
    rados_ioctx_set_namespace(io_, c.rbd_namespace.c_str());
  }
  return Status::OK();
}

void CloseImage(rbd_image_t* image) {
  if (*image != nullptr) {
    rbd_close(*image);
    *image = nullptr;
  }
}

}  // namespace backy::sources
