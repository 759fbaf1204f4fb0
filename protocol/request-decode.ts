// The server side of a request: an infer request body (JSON or with binary tensors) decoded into tensors, with
// large flat arrays optionally deferred to the instance thread.
import { hearthError, shown, type Datatype, type Tensor, type TensorData } from '../core/index.ts';
import { finishTensors } from './binary-extension.ts';
import { Scanner, describeByte, preview, toBytes } from './json-scanner.ts';
import {
  checkDatatype,
  checkOutputs,
  checkParameters,
  checkShape,
  countOf,
  fmtShape,
  once,
  readInput,
  readParameters,
} from './tensor-object.ts';
import { readDataArray } from './tensor-sinks.ts';
import { type DecodeOptions, type DecodedInferRequest, type RawInput, type ScanOptions, type ScannedInferRequest } from './types.ts';

const REQUEST_MEMBERS: Readonly<Record<string, number>> = Object.assign(Object.create(null) as Record<string, number>, {
  inputs: 1,
  id: 2,
  parameters: 4,
  outputs: 8,
});

/**
 * Decodes a V2 infer request body: JSON, or (with `headerLength`) the binary tensor extension's JSON header
 * followed by raw tensors in input order. Throws INVALID_REQUEST for malformed bodies and INVALID_TENSOR for
 * an input whose datatype, shape or data cannot be read. Checking against a model is validateInputs' job,
 * except that each input's data length must match its own shape.
 */
export function decodeInferRequest(body: Uint8Array | string, opts: DecodeOptions = {}): DecodedInferRequest {
  // Without deferAbove every input is decoded: the inputs are all Tensors.
  return scan(body, opts, undefined) as DecodedInferRequest;
}

/**
 * decodeInferRequest for the infer route: flat numeric `data` arrays of at least `deferAbove` bytes stay JSON
 * text (DeferredTensor), parsed later on the instance thread. Everything else is read and checked as
 * decodeInferRequest does, except those inputs' element counts and leaf values, which the instance checks
 * per request (a bad one fails only its own request).
 */
export function scanInferRequest(body: Uint8Array | string, opts: ScanOptions): ScannedInferRequest {
  return scan(body, opts, opts.deferAbove);
}

/** The decoded values of one deferred `data` array, checked against the element count its shape needs. */
export function decodeDeferredJson(json: Uint8Array, at: number, datatype: Datatype, shape: readonly number[], name: string): TensorData {
  const count = countOf(shape, name);
  const data = readDataArray(new Scanner(json, 0, json.length, at), datatype, count, name);
  // The same message as an eagerly decoded input's (finishTensors).
  if (data.length !== count)
    throw hearthError('INVALID_TENSOR', `input "${shown(name)}": shape ${fmtShape(shape)} needs ${count} elements, got ${data.length}`);
  return data;
}

function scan(body: Uint8Array | string, opts: DecodeOptions, deferAbove: number | undefined): ScannedInferRequest {
  const b = toBytes(body);
  const headerLength = opts.headerLength ?? b.length;
  if (!Number.isSafeInteger(headerLength) || headerLength < 0 || headerLength > b.length) {
    throw hearthError('INVALID_REQUEST', `Inference-Header-Content-Length ${opts.headerLength} does not fit a body of ${b.length} bytes`);
  }
  const s = new Scanner(b, 0, headerLength);
  s.ws();
  if (s.pos >= s.end) throw hearthError('INVALID_REQUEST', 'body is empty; expected a JSON inference request');
  if (s.b[s.pos] !== 0x7b) s.fail(`expected '{', found ${describeByte(s.peek())}`);

  const req: ScannedInferRequest = { inputs: [] };
  const raws: RawInput[] = [];
  let sawInputs = false;
  let outputs: unknown;
  let seen = 0;
  s.readObject((key) => {
    seen = once(REQUEST_MEMBERS, seen, key, -1);
    switch (key) {
      case 'inputs':
        sawInputs = true;
        s.ws();
        if (s.b[s.pos] !== 0x5b) throw hearthError('INVALID_REQUEST', '"inputs" must be an array');
        s.readArray((i) => {
          s.ws();
          if (s.b[s.pos] !== 0x7b) throw hearthError('INVALID_REQUEST', `inputs[${i}] must be an object`);
          raws.push(readInput(s, i, deferAbove));
        });
        break;
      case 'id': {
        const id = s.readAny();
        if (typeof id !== 'string') throw hearthError('INVALID_REQUEST', `"id" must be a string, got ${preview(id)}`);
        req.id = id;
        break;
      }
      case 'parameters':
        req.parameters = checkParameters(
          readParameters(s, () => 'the request'),
          () => 'request',
        );
        break;
      case 'outputs':
        outputs = s.readAny();
        break;
      default:
        s.skipValue();
    }
  });
  s.atEnd();
  if (!sawInputs) throw hearthError('INVALID_REQUEST', 'the request has no "inputs" array');

  const done = finishTensors(raws, b, headerLength, opts.headerLength !== undefined, 'input');
  req.inputs = done.tensors;
  if (done.parameters) req.inputParameters = done.parameters;
  if (outputs !== undefined) req.outputs = checkOutputs(outputs);
  return req;
}

/**
 * Builds a Tensor from an already parsed V2 input object (`{name, shape, datatype, data}`), e.g. one row of a
 * JSON Lines file read with JSON.parse. INT64/UINT64 beyond 2^53 must arrive as strings or BigInts here;
 * prefer decodeInferRequest on the raw text, which keeps them exact.
 */
export function tensorFromJson(input: unknown, index = 0): Tensor {
  if (input === null || typeof input !== 'object') throw hearthError('INVALID_REQUEST', `inputs[${index}] must be an object`);
  const o = input as { name?: unknown; shape?: unknown; datatype?: unknown; data?: unknown };
  if (typeof o.name !== 'string' || o.name === '') throw hearthError('INVALID_REQUEST', `inputs[${index}] needs a "name" string`);
  const name = o.name;
  const shape = checkShape(o.shape, name);
  const datatype = checkDatatype(o.datatype, name);
  const count = countOf(shape, name);
  if (o.data === undefined) throw hearthError('INVALID_REQUEST', `input "${shown(name)}": missing "data"`);
  // Re-serialise only the data and read it with the exact scanner: one code path for every datatype.
  let text: string;
  try {
    text = JSON.stringify(o.data, (_k, v: unknown) => (typeof v === 'bigint' ? `${v}` : v));
  } catch (e) {
    // JSON.stringify recurses: data nested tens of thousands deep overflows the stack (a RangeError, as is a string too long).
    throw hearthError('INVALID_TENSOR', `input "${shown(name)}": "data" cannot be read: ${(e as Error).message}`);
  }
  const s = new Scanner(Buffer.from(text, 'utf8'), 0, Buffer.byteLength(text));
  const data = readDataArray(s, datatype, count, name);
  if (data.length !== count) {
    throw hearthError('INVALID_TENSOR', `input "${shown(name)}": shape ${fmtShape(shape)} needs ${count} elements, got ${data.length}`);
  }
  return { name, datatype, shape, data };
}
