// The upload API suite on the s3 store; split per backend so the two files run in parallel.
import { modelUploadSuite } from './models-upload-suite.ts';

modelUploadSuite('s3');
