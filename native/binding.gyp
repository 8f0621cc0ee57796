{
  "targets": [
    {
      "target_name": "ctsync_netlink",
      "sources": ["src/netlink.c", "src/aead.c", "src/fastpath.c"],
      "cflags": ["-O2", "-Wall", "-Wextra", "-Wno-unused-parameter"]
    }
  ]
}
