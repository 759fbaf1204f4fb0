// The upload API suite again with AUTH on, as a key holding only the scopes uploads and reads need: auth must not
// change any answer of a caller that is allowed.
import { modelUploadSuite } from './models-upload-suite.ts';

modelUploadSuite('fs', ['models:write', 'models:read']);
