// onnxruntime's messages as a client sees them: its source locations, C++ signatures and failed-assertion
// expressions cut, the innermost failing node named, the reason kept. The inputs are messages onnxruntime-node 1.30
// gave for silero VAD and for files that are not models.
import { describe, expect, it } from 'vitest';
import { ortMessage } from '../../functions/ort-message.ts';

describe('ortMessage', () => {
  it('a reshape inside two If subgraphs: the Reshape node and its reason, no location, signature or expression', () => {
    const raw =
      "Non-zero status code returned while running If node. Name:'If_25' Status Message: Non-zero status code returned while running Reshape node. Name:'Reshape_39' Status Message: /onnxruntime_src/onnxruntime/core/providers/cpu/tensor/reshape_helper.h:84 onnxruntime::ReshapeHelper::ReshapeHelper(const onnxruntime::TensorShape&, onnxruntime::TensorShapeVector&, bool) size != 0 && (input_shape_size % size) == 0 was false. The input tensor cannot be reshaped to the requested shape. Input shape:{0,512}, requested shape:{0,1,-1}\n";
    expect(ortMessage(raw)).toBe(
      'Reshape node "Reshape_39": The input tensor cannot be reshaped to the requested shape. Input shape:{0,512}, requested shape:{0,1,-1}',
    );
  });

  it('a message with no location keeps its text, and names the innermost node', () => {
    const raw =
      "Non-zero status code returned while running If node. Name:'If_25' Status Message: Non-zero status code returned while running LSTM node. Name:'LSTM_245' Status Message: Input initial_h must have shape {1,3,64}. Actual:{1,1,64}";
    expect(ortMessage(raw)).toBe('LSTM node "LSTM_245": Input initial_h must have shape {1,3,64}. Actual:{1,1,64}');
    expect(ortMessage('Failed to load model because protobuf parsing failed.')).toBe(
      'Failed to load model because protobuf parsing failed.',
    );
  });

  it('a return type before the signature goes too; the text around the location stays', () => {
    const alloc =
      '/onnxruntime_src/onnxruntime/core/framework/bfc_arena.cc:376 void* onnxruntime::BFCArena::AllocateRawInternal(size_t, bool, onnxruntime::Stream*, bool, onnxruntime::WaitNotificationFn) Failed to allocate memory for requested buffer of size 4294967296';
    expect(ortMessage(alloc)).toBe('Failed to allocate memory for requested buffer of size 4294967296');
    const load =
      'Load model failed:/onnxruntime_src/onnxruntime/core/graph/model.cc:180 onnxruntime::Model::Model(onnx::ModelProto&&, const PathString&, const IOnnxRuntimeOpSchemaRegistryList*, const onnxruntime::logging::Logger&, const onnxruntime::ModelOptions&) Unsupported model IR version: 99, max supported IR version: 10';
    expect(ortMessage(load)).toBe('Load model failed:Unsupported model IR version: 99, max supported IR version: 10');
  });

  it('"was false" without an expression before it is not cut', () => {
    expect(ortMessage('The flag was false. Something else')).toBe('The flag was false. Something else');
  });
});
