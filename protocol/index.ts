// protocol: the Open Inference Protocol (KServe V2 / Triton REST) in one place, one file per concern. The server side
// decodes infer requests and encodes responses (JSON and the binary tensor extension); the client side encodes
// requests and decodes responses, for tests, benchmarks and the SDK; validate.ts checks inputs against a model.
export {
  MAX_JSON_DEPTH,
  MAX_TENSOR_RANK,
  type V2Parameters,
  type RequestedOutput,
  type DecodedInferRequest,
  type DecodeOptions,
  type ScanOptions,
  type ScannedInferRequest,
  type EncodeResponseInput,
  type EncodedResponse,
} from './types.ts';
export { decodeInferRequest, scanInferRequest, decodeDeferredJson, tensorFromJson } from './request-decode.ts';
export { fmtShape } from './tensor-object.ts';
export { binaryTensorBytes } from './binary-extension.ts';
export { binaryOutputSelector, jsonDataText, encodeInferResponse } from './response-encode.ts';
export { encodeInferRequest, decodeInferResponse } from './client.ts';
export { floatToHalfBits, halfBitsToFloat } from './fp16.ts';
export { float32ArrayJson } from './float-text.ts';
export { validateInputs, checkOutputNames, checkTensorData, shapeFits, manifestSignature, type Signature } from './validate.ts';
