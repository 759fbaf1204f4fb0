// The upload API suite on the fs store; split per backend so the two files run in parallel.
import { modelUploadSuite } from './models-upload-suite.ts';

modelUploadSuite('fs');
