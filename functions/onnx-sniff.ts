// Explains why a file that onnxruntime refused is not an ONNX model, in words a user can act on:
// an empty file, an image or archive uploaded by mistake, or a ModelProto cut short.
import fs from 'node:fs/promises';

const SIGNATURES: [bytes: number[], what: string][] = [
  [[0x89, 0x50, 0x4e, 0x47], 'a PNG image'],
  [[0xff, 0xd8, 0xff], 'a JPEG image'],
  [[0x47, 0x49, 0x46, 0x38], 'a GIF image'],
  [[0x1f, 0x8b], 'gzip data (upload a .tar.gz as an archive, not as model.onnx)'],
  [[0x50, 0x4b, 0x03, 0x04], 'a zip archive (a PyTorch .pt file or a zipped folder?)'],
  [[0x25, 0x50, 0x44, 0x46], 'a PDF document'],
  [[0x7b], 'JSON or text, not a binary ONNX protobuf'],
];

// ModelProto's top-level fields (onnx.proto), for naming them in messages.
const MODEL_FIELDS: Record<number, string> = {
  1: 'ir_version',
  2: 'producer_name',
  3: 'producer_version',
  4: 'domain',
  5: 'model_version',
  6: 'doc_string',
  7: 'graph',
  8: 'opset_import',
  14: 'metadata_props',
  20: 'training_info',
  25: 'functions',
};

/** A reason the file is not an ONNX ModelProto, or undefined when its top level looks sound. */
export async function describeNotOnnx(file: string): Promise<string | undefined> {
  let fh: fs.FileHandle;
  try {
    fh = await fs.open(file, 'r');
  } catch (e) {
    return `cannot open it: ${(e as Error).message}`;
  }
  try {
    const size = (await fh.stat()).size;
    if (size === 0) return 'the file is empty';
    const head = Buffer.alloc(Math.min(16, size));
    await fh.read(head, 0, head.length, 0);
    for (const [sig, what] of SIGNATURES) {
      if (sig.every((b, i) => head[i] === b)) return `the file is ${what}`;
    }
    return await walkTopLevel(fh, size);
  } finally {
    await fh.close();
  }
}

async function walkTopLevel(fh: fs.FileHandle, size: number): Promise<string | undefined> {
  const buf = Buffer.alloc(20);
  let at = 0;
  let sawGraph = false;
  let sawIrVersion = false;
  const readVarint = async (pos: number): Promise<{ value: number; next: number } | undefined> => {
    const n = Math.min(buf.length, size - pos);
    if (n <= 0) return undefined;
    await fh.read(buf, 0, n, pos);
    let value = 0;
    let mul = 1;
    for (let i = 0; i < Math.min(n, 10); i++) {
      value += (buf[i] & 0x7f) * mul;
      mul *= 128;
      if (!(buf[i] & 0x80)) return { value, next: pos + i + 1 };
    }
    return undefined;
  };
  while (at < size) {
    const tag = await readVarint(at);
    if (!tag) return `the file is truncated inside a field tag at byte ${at} of ${size}`;
    const field = Math.floor(tag.value / 8);
    const wire = tag.value % 8;
    const name = MODEL_FIELDS[field] ?? `field ${field}`;
    if (field === 0 || wire === 3 || wire === 4 || wire > 5) {
      return `it is not an ONNX protobuf: bad field tag 0x${tag.value.toString(16)} at byte ${at}`;
    }
    // Every ModelProto field is a varint (ir_version, model_version) or length-delimited (the rest).
    const expectWire = field === 1 || field === 5 ? 0 : 2;
    if (!(field in MODEL_FIELDS) || wire !== expectWire) {
      return `it is not an ONNX model: ${field in MODEL_FIELDS ? `${name} has the wrong wire type` : `unexpected top-level field ${field}`} at byte ${at}`;
    }
    if (field === 7) sawGraph = true;
    if (field === 1) sawIrVersion = true;
    if (wire === 0) {
      const v = await readVarint(tag.next);
      if (!v) return `the file is truncated inside ${name} at byte ${tag.next} of ${size}`;
      at = v.next;
    } else {
      const len = await readVarint(tag.next);
      if (!len) return `the file is truncated inside the length of ${name} at byte ${tag.next} of ${size}`;
      if (len.next + len.value > size) {
        return `the file is truncated: ${name} at byte ${at} declares ${len.value} bytes but only ${size - len.next} remain`;
      }
      at = len.next + len.value;
    }
  }
  if (!sawIrVersion && !sawGraph) return 'it is not an ONNX model: no ir_version and no graph';
  if (!sawGraph) return 'the ONNX model has no graph';
  return undefined;
}
