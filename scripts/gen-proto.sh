#!/usr/bin/env bash
# Regenerates src/shared/proto/ from proto/*.proto with ts-proto (needs Debian's protobuf-compiler).
# The output is committed: building the project does not need protoc.
set -euo pipefail
cd "$(dirname "$0")/.."
protoc \
  --plugin=protoc-gen-ts_proto=node_modules/.bin/protoc-gen-ts_proto \
  --ts_proto_out=src/shared/proto \
  --ts_proto_opt=outputServices=grpc-js,esModuleInterop=true,importSuffix=.js,env=node,useOptionals=none,forceLong=number,oneof=unions \
  -I proto proto/joblet.proto
echo "generated src/shared/proto/joblet.ts"
