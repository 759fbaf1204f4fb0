// Upload: drop a model (one .onnx, a .tar.gz of a TF.js folder, or the folder's files) or pick it with the keyboard;
// the bar follows the bytes sent, then the server inspects the model and answers the new version.
import { useRef, useState } from 'preact/hooks';
import { ApiError, uploadModel } from '../api.ts';
import { ErrorNote } from './common.tsx';

const NAME = /^[a-z0-9][a-z0-9._-]{0,99}$/;

export function UploadPage() {
  const [name, setName] = useState('');
  const [files, setFiles] = useState<File[]>([]);
  const [over, setOver] = useState(false);
  const [progress, setProgress] = useState<{ sent: number; total: number } | undefined>();
  const [phase, setPhase] = useState<'idle' | 'sending' | 'inspecting' | 'done'>('idle');
  const [done, setDone] = useState<{ name: string; version: number } | undefined>();
  const [error, setError] = useState<ApiError | undefined>();
  const input = useRef<HTMLInputElement>(null);

  const take = (list: FileList | null | undefined) => {
    const fs = list ? [...list] : [];
    if (!fs.length) return;
    setFiles(fs);
    setDone(undefined);
    setError(undefined);
    if (!name)
      setName(
        fs[0].name
          .replace(/\.(onnx|tar\.gz|tgz|json)$/i, '')
          .toLowerCase()
          .replace(/[^a-z0-9._-]+/g, '-')
          .replace(/^[^a-z0-9]+/, '') || 'model',
      );
  };
  const send = async () => {
    if (!NAME.test(name)) {
      setError(new ApiError('a model name is lower-case letters, digits, ".", "_" and "-", starting with a letter or digit', 0, 'CLIENT'));
      return;
    }
    setError(undefined);
    setDone(undefined);
    setPhase('sending');
    try {
      const r = await uploadModel(name, files, (sent, total) => {
        setProgress({ sent, total });
        if (total && sent >= total) setPhase('inspecting');
      });
      setDone(r);
      setPhase('done');
    } catch (e) {
      setError(e as ApiError);
      setPhase('idle');
    }
  };
  const total = files.reduce((a, f) => a + f.size, 0);
  return (
    <section aria-labelledby="upload-h">
      <h1 id="upload-h">Upload a model</h1>
      <div
        class={`drop ${over ? 'over' : ''}`}
        data-testid="drop"
        role="button"
        tabIndex={0}
        aria-label="Drop model files here, or press Enter to choose them"
        onClick={() => input.current?.click()}
        onKeyDown={(e) => {
          if (e.key === 'Enter' || e.key === ' ') {
            e.preventDefault();
            input.current?.click();
          }
        }}
        onDragOver={(e) => {
          e.preventDefault();
          setOver(true);
        }}
        onDragLeave={() => setOver(false)}
        onDrop={(e) => {
          e.preventDefault();
          setOver(false);
          take(e.dataTransfer?.files);
        }}
      >
        {files.length ? (
          <span data-testid="files">
            {files.map((f) => f.name).join(', ')} ({(total / 1024).toFixed(0)} KiB)
          </span>
        ) : (
          <span>Drop a .onnx, a .tar.gz or a TF.js model's files here, or press Enter to choose</span>
        )}
        <input ref={input} type="file" multiple hidden onChange={(e) => take((e.target as HTMLInputElement).files)} />
      </div>
      <div class="row">
        <label for="model-name">Model name</label>
        <input id="model-name" value={name} onInput={(e) => setName((e.target as HTMLInputElement).value)} placeholder="vad" />
        <button
          onClick={() => void send()}
          disabled={!files.length || phase === 'sending' || phase === 'inspecting'}
          data-testid="upload-send"
        >
          Upload
        </button>
      </div>
      <div class="row">
        <progress
          data-testid="upload-progress"
          max={Math.max(1, progress?.total || total)}
          value={progress?.sent ?? 0}
          aria-label="upload progress"
        />
        <span role="status" data-testid="upload-status">
          {phase === 'sending' && 'sending…'}
          {phase === 'inspecting' && 'sent; the server is inspecting the model…'}
          {phase === 'done' && done && (
            <>
              Created <a href={`#/models/${encodeURIComponent(done.name)}`}>{done.name}</a> version{' '}
              <strong data-testid="upload-version">{done.version}</strong>
            </>
          )}
        </span>
      </div>
      {error && <ErrorNote error={error} />}
    </section>
  );
}
