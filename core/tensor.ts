// Tensors as Hearth moves them between gateway, executor and instances.
import type { Datatype, TensorData } from './datatypes.ts';

/** A tensor with a concrete shape. `data` is row-major; its length equals the product of `shape`. */
export interface Tensor {
  name: string;
  datatype: Datatype;
  shape: number[];
  data: TensorData;
}

/** An input or output as declared by a model: -1 marks a dynamic or symbolic dimension. */
export interface TensorSpec {
  name: string;
  datatype: Datatype;
  shape: number[];
}
