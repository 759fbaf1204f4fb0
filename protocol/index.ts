// protocol: the Open Inference Protocol (KServe V2 / Triton REST) in one place. The server side decodes infer
// requests and encodes responses (JSON and the binary tensor extension); the client side encodes requests and
// decodes responses, for tests, benchmarks and the SDK.
export {
  MAX_JSON_DEPTH, MAX_TENSOR_RANK,
  decodeInferRequest, scanInferRequest, decodeDeferredJson, tensorFromJson, binaryOutputSelector,
  jsonDataText, binaryTensorBytes, encodeInferResponse, encodeInferRequest, decodeInferResponse,
  floatToHalfBits, halfBitsToFloat, fmtShape,
  type V2Parameters, type RequestedOutput, type DecodedInferRequest, type DecodeOptions, type ScanOptions,
  type ScannedInferRequest, type EncodeResponseInput, type EncodedResponse,
} from './v2-codec.ts';
export { float32ArrayJson } from './float-text.ts';
export { validateInputs, checkOutputNames, checkTensorData, shapeFits, manifestSignature, type Signature } from './validate.ts';
