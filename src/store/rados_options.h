// RadosOptions: how to reach a Ceph cluster — for RBD sources and for
// repositories in a RADOS pool. Kept apart from rados_pool.h so that code
// naming a repository's location need not include librados.
#pragma once

#include <string>

namespace backy::store {

struct RadosOptions {
  // Path of a ceph.conf. Empty: $CEPH_CONF, then Ceph's default locations.
  // $CEPH_ARGS is applied on top in either case.
  std::string conf_path;
  std::string client_id;  // "admin" when empty (as in client.admin)
  std::string keyring;    // empty: whatever the configuration says
  // client_mount_timeout and rados_mon_op_timeout: how long to wait for
  // the monitors instead of Ceph's default 300 s.
  int connect_timeout_s = 30;
  // rados_osd_op_timeout: a single read or write that takes longer fails.
  int op_timeout_s = 300;
  // How long a lock on a repository in a pool lasts unless renewed (its
  // holder renews it every third of that): how soon a killed or cut-off
  // holder's lock frees itself. $BACKY_RADOS_LEASE_SECONDS sets it.
  int lease_s = 30;
};

}  // namespace backy::store
