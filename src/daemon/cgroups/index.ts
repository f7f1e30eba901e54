// The cgroups layer's public surface: the manager interface and its factory, plus the helpers that
// validate limits before a job starts.
export { blockDeviceFor, type BlockDevice } from "./blockdev.js";
export { formatCpuList, onlineCpus, onlineMems, parseCpuList, validateCpuCores } from "./cpuset.js";
export { detectCgroupMode, type CgroupMode } from "./detect.js";
export { createCgroupManager, type CgroupManagerOptions } from "./factory.js";
export { checkCgroupPath, type CgroupCapabilities, type CgroupManager, type CgroupStats } from "./manager.js";
