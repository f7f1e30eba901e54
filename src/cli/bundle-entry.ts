// The entry of the bundle dist/rnx.mjs (scripts/bundle-cli.mjs). The bundle holds rnx as one CommonJS-style
// function so that bin/rnx can compile it with V8's code cache (bin/rnx explains); this module is what that
// function returns. Nothing runs on load: whoever loads the program calls `main`.
export { startRnx as main } from "./start.js";
