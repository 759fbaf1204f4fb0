// Talking to Hearth: every call sends the key (kept in sessionStorage only, never in a URL), errors come back as
// ApiError with the server's message and code, the event stream is read with fetch() and a stream reader (an
// EventSource cannot send a header), and uploads go through XMLHttpRequest for its upload progress.

const KEY_ITEM = 'hearth.apiKey';

/** index.html says whether AUTH is on (the server fills the meta tag). */
export const authOn = document.querySelector('meta[name="hearth-auth"]')?.getAttribute('content') === 'on';

export function getKey(): string | null {
  return sessionStorage.getItem(KEY_ITEM);
}

export function setKey(key: string | null): void {
  if (key) sessionStorage.setItem(KEY_ITEM, key);
  else sessionStorage.removeItem(KEY_ITEM);
  for (const f of keyListeners) f();
}

const keyListeners = new Set<() => void>();
export function onKeyChange(f: () => void): () => void {
  keyListeners.add(f);
  return () => keyListeners.delete(f);
}

export class ApiError extends Error {
  constructor(
    message: string,
    readonly status: number,
    readonly code: string,
  ) {
    super(message);
  }
}

function headers(extra: Record<string, string> = {}): Record<string, string> {
  const key = getKey();
  return key ? { ...extra, authorization: `Bearer ${key}` } : extra;
}

/** A refused key (401) forgets it, so the dashboard asks again. */
function refused(status: number): void {
  if (status === 401 && getKey()) setKey(null);
}

export async function api<T>(path: string, init: { method?: string; body?: unknown } = {}): Promise<T> {
  const res = await fetch(path, {
    method: init.method ?? 'GET',
    headers: headers(init.body !== undefined ? { 'content-type': 'application/json' } : {}),
    ...(init.body !== undefined ? { body: JSON.stringify(init.body) } : {}),
  });
  const text = await res.text();
  let body: unknown;
  try {
    body = text ? JSON.parse(text) : undefined;
  } catch {
    body = text;
  }
  if (!res.ok) {
    refused(res.status);
    const e = (body ?? {}) as { error?: string; code?: string };
    throw new ApiError(e.error ?? `HTTP ${res.status}`, res.status, e.code ?? 'HTTP');
  }
  return body as T;
}

/** A download that needs the key: fetched, then handed to the browser as a blob URL. */
export async function download(path: string, filename: string): Promise<void> {
  const res = await fetch(path, { headers: headers() });
  if (!res.ok) {
    refused(res.status);
    throw new ApiError(`HTTP ${res.status}`, res.status, 'HTTP');
  }
  const url = URL.createObjectURL(await res.blob());
  const a = document.createElement('a');
  a.href = url;
  a.download = filename;
  a.click();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}

export type StreamState = 'connecting' | 'open' | 'retrying' | 'stopped';

/**
 * Reads GET /v1/events with fetch() (so the key goes in a header), parsing Server-Sent Events as they arrive;
 * reconnects after the server's `retry:` (2 s) when the stream ends. Returns a stop function.
 */
export function openEvents(onEvent: (event: string, data: unknown) => void, onState: (s: StreamState) => void): () => void {
  let stopped = false;
  let ctrl: AbortController | undefined;
  let retryMs = 2000;
  const run = async () => {
    while (!stopped) {
      ctrl = new AbortController();
      onState('connecting');
      try {
        const res = await fetch('/v1/events', { headers: headers({ accept: 'text/event-stream' }), signal: ctrl.signal });
        if (res.status === 401 || res.status === 403) {
          refused(res.status);
          onState('stopped');
          return;
        }
        if (!res.ok || !res.body) throw new Error(`HTTP ${res.status}`);
        onState('open');
        const reader = res.body.getReader();
        const decoder = new TextDecoder();
        let buf = '';
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          buf += decoder.decode(value, { stream: true });
          let i: number;
          while ((i = buf.indexOf('\n\n')) >= 0) {
            const block = buf.slice(0, i);
            buf = buf.slice(i + 2);
            let event = 'message';
            let data = '';
            for (const line of block.split('\n')) {
              if (line.startsWith('event: ')) event = line.slice(7);
              else if (line.startsWith('data: ')) data += line.slice(6);
              else if (line.startsWith('retry: ')) retryMs = Number(line.slice(7)) || retryMs;
            }
            if (data) onEvent(event, JSON.parse(data));
          }
        }
      } catch {
        // A dropped connection or a node restarting: try again below.
      }
      if (stopped) return;
      onState('retrying');
      await new Promise((r) => setTimeout(r, retryMs));
    }
  };
  void run();
  return () => {
    stopped = true;
    ctrl?.abort();
  };
}

/** Uploads a model with progress: one .onnx or .tar.gz as the raw body, several files as multipart. */
export function uploadModel(
  name: string,
  files: File[],
  onProgress: (sent: number, total: number) => void,
): Promise<{ name: string; version: number }> {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open('POST', `/v1/models/${encodeURIComponent(name)}`);
    const key = getKey();
    if (key) xhr.setRequestHeader('authorization', `Bearer ${key}`);
    xhr.upload.onprogress = (e) => onProgress(e.loaded, e.lengthComputable ? e.total : 0);
    xhr.onerror = () => reject(new ApiError('the upload could not reach the server', 0, 'NETWORK'));
    xhr.onload = () => {
      let body: { error?: string; code?: string; version?: number; name?: string } = {};
      try {
        body = JSON.parse(xhr.responseText) as typeof body;
      } catch {
        // not JSON
      }
      if (xhr.status >= 200 && xhr.status < 300) resolve({ name: body.name ?? name, version: body.version ?? 0 });
      else {
        refused(xhr.status);
        reject(new ApiError(body.error ?? `HTTP ${xhr.status}`, xhr.status, body.code ?? 'HTTP'));
      }
    };
    if (files.length === 1 && /\.(onnx|tar\.gz|tgz)$/i.test(files[0].name)) {
      xhr.setRequestHeader('content-type', /\.onnx$/i.test(files[0].name) ? 'application/octet-stream' : 'application/gzip');
      xhr.send(files[0]);
    } else {
      const form = new FormData();
      for (const f of files) form.append('file', f, f.name);
      xhr.send(form);
    }
  });
}
