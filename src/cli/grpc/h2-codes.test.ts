import assert from "node:assert/strict";
import { constants } from "node:http2";
import { test } from "node:test";
import * as codes from "./h2-codes.js";

test("the HTTP/2 error codes are node:http2's", () => {
  assert.equal(codes.H2_NO_ERROR, constants.NGHTTP2_NO_ERROR);
  assert.equal(codes.H2_REFUSED_STREAM, constants.NGHTTP2_REFUSED_STREAM);
  assert.equal(codes.H2_CANCEL, constants.NGHTTP2_CANCEL);
  assert.equal(codes.H2_ENHANCE_YOUR_CALM, constants.NGHTTP2_ENHANCE_YOUR_CALM);
  assert.equal(codes.H2_INADEQUATE_SECURITY, constants.NGHTTP2_INADEQUATE_SECURITY);
});
