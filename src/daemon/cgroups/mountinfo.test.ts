import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { parseMountinfo, readMountinfo } from "./mountinfo.js";

describe("parseMountinfo", () => {
  it("parses fields, optional fields and escapes", () => {
    const text = [
      "36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 - ext3 /dev/root rw,errors=continue",
      "31 30 0:28 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid shared:9 - cgroup cgroup rw,cpu,cpuacct",
      "40 30 0:37 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw",
      "50 22 254:0 /a\\040b /mnt/with\\040space rw - ext4 /dev/vda rw",
      "garbage line",
      "",
    ].join("\n");
    const mounts = parseMountinfo(text);
    assert.equal(mounts.length, 4);
    assert.deepEqual(mounts[0], {
      major: 98,
      minor: 0,
      root: "/mnt1",
      mountPoint: "/mnt2",
      fsType: "ext3",
      source: "/dev/root",
      superOptions: ["rw", "errors=continue"],
    });
    assert.equal(mounts[1]!.mountPoint, "/sys/fs/cgroup/cpu,cpuacct");
    assert.deepEqual(mounts[1]!.superOptions, ["rw", "cpu", "cpuacct"]);
    assert.equal(mounts[2]!.fsType, "cgroup2");
    assert.equal(mounts[3]!.root, "/a b");
    assert.equal(mounts[3]!.mountPoint, "/mnt/with space");
  });

  it("reads this process's mountinfo, and [] for a missing file", () => {
    assert.ok(readMountinfo().some((m) => m.mountPoint === "/"));
    assert.deepEqual(readMountinfo("/nonexistent/mountinfo"), []);
  });
});
