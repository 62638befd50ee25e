// REST v1 client: auth headers, Rocket.Chat's error envelope as `ApiError`, and uploads through
// XMLHttpRequest (fetch cannot report upload progress).

/** How long a GET may take before it is abandoned. */
const GET_TIMEOUT_MS = 30_000;

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly error: string,
    readonly errorType: string | undefined,
    readonly details: unknown,
  ) {
    super(error);
  }
}

export interface Credentials {
  userId: string;
  token: string;
}

type Query = Record<string, string | number | boolean | undefined>;

export class Api {
  credentials: Credentials | null = null;
  /** Called on a 401 of an authenticated call: the session is gone. */
  onUnauthorized: (() => void) | null = null;

  constructor(private readonly base = '') {}

  private headers(json: boolean): Record<string, string> {
    const h: Record<string, string> = {};
    if (json) h['Content-Type'] = 'application/json';
    if (this.credentials) {
      h['X-User-Id'] = this.credentials.userId;
      h['X-Auth-Token'] = this.credentials.token;
    }
    return h;
  }

  async get<T = any>(endpoint: string, query: Query = {}): Promise<T> {
    const qs = new URLSearchParams();
    for (const [k, v] of Object.entries(query)) if (v !== undefined) qs.set(k, String(v));
    const q = qs.toString();
    return this.request<T>('GET', `${endpoint}${q ? `?${q}` : ''}`);
  }

  async post<T = any>(endpoint: string, body: unknown = {}, extra: Record<string, string> = {}): Promise<T> {
    return this.request<T>('POST', endpoint, body, extra);
  }

  private async request<T>(method: string, endpoint: string, body?: unknown, extra: Record<string, string> = {}): Promise<T> {
    const res = await fetch(`${this.base}/api/v1/${endpoint}`, {
      method,
      headers: { ...this.headers(body !== undefined), ...extra },
      body: body === undefined ? undefined : JSON.stringify(body),
      // A read on a connection the network lost may never be answered; reads can be repeated.
      signal: method === 'GET' ? AbortSignal.timeout(GET_TIMEOUT_MS) : undefined,
    });
    let data: any = null;
    try {
      data = await res.json();
    } catch {
      /* not JSON: handled below */
    }
    if (!res.ok || (data && data.success === false)) {
      if (res.status === 401 && this.credentials && endpoint !== 'login') this.onUnauthorized?.();
      throw toError(res.status, data);
    }
    return data as T;
  }

  /**
   * Uploads `file` to a room in two steps, as Rocket.Chat's client does: `rooms.media` stores
   * it (progress reported from 0 to 1), `rooms.mediaConfirm` posts the message.
   */
  upload(
    rid: string,
    file: File,
    opts: { msg?: string; tmid?: string; onProgress?: (fraction: number) => void; signal?: AbortSignal },
  ): Promise<any> {
    return new Promise((resolve, reject) => {
      const xhr = new XMLHttpRequest();
      xhr.open('POST', `${this.base}/api/v1/rooms.media/${encodeURIComponent(rid)}`);
      for (const [k, v] of Object.entries(this.headers(false))) xhr.setRequestHeader(k, v);
      xhr.upload.onprogress = (e) => {
        if (e.lengthComputable) opts.onProgress?.(e.loaded / e.total);
      };
      xhr.onerror = () => reject(new ApiError(0, 'network-error', undefined, null));
      xhr.onabort = () => reject(new ApiError(0, 'aborted', undefined, null));
      xhr.onload = () => {
        let data: any = null;
        try {
          data = JSON.parse(xhr.responseText);
        } catch {
          /* handled below */
        }
        if (xhr.status !== 200 || !data?.success) {
          reject(toError(xhr.status, data));
          return;
        }
        opts.onProgress?.(1);
        const confirm: Record<string, string> = {};
        if (opts.msg) confirm.msg = opts.msg;
        if (opts.tmid) confirm.tmid = opts.tmid;
        this.post(`rooms.mediaConfirm/${encodeURIComponent(rid)}/${encodeURIComponent(data.file._id)}`, confirm).then(resolve, reject);
      };
      opts.signal?.addEventListener('abort', () => xhr.abort());
      const form = new FormData();
      form.append('file', file, file.name);
      xhr.send(form);
    });
  }
}

function toError(status: number, data: any): ApiError {
  const error =
    (typeof data?.error === 'string' && data.error) ||
    (typeof data?.message === 'string' && data.message) ||
    `HTTP ${status}`;
  return new ApiError(status, error, data?.errorType, data?.details);
}
