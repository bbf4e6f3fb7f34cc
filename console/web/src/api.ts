// The console REST API (console/openapi.yaml), called with the user's bearer token.

const TOKEN_KEY = 'wasmbed.token';

export function getToken(): string | null {
  return sessionStorage.getItem(TOKEN_KEY);
}

export function setToken(token: string | null): void {
  if (token) sessionStorage.setItem(TOKEN_KEY, token);
  else sessionStorage.removeItem(TOKEN_KEY);
}

/** ApiError is a failed call: the console's {error, detail, causes} and the status. */
export class ApiError extends Error {
  status: number;
  detail: string;
  causes: { field?: string; message: string }[];
  constructor(status: number, error: string, detail = '', causes: { field?: string; message: string }[] = []) {
    super(error);
    this.status = status;
    this.detail = detail;
    this.causes = causes;
  }
}

/** onUnauthorized is called when the apiserver refuses the token. */
let unauthorized: () => void = () => {};
export function onUnauthorized(f: () => void): void {
  unauthorized = f;
}

export async function api<T>(method: string, path: string, body?: unknown): Promise<T> {
  const headers: Record<string, string> = { Accept: 'application/json' };
  const token = getToken();
  if (token) headers.Authorization = `Bearer ${token}`;
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  let resp: Response;
  try {
    resp = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  } catch (e) {
    throw new ApiError(0, 'console unreachable', `check that the console runs (${String(e)})`);
  }
  const text = await resp.text();
  let json: unknown = undefined;
  try {
    json = text ? JSON.parse(text) : undefined;
  } catch {
    /* not JSON: reported below */
  }
  if (!resp.ok) {
    const e = (json ?? {}) as { error?: string; detail?: string; causes?: { field?: string; message: string }[] };
    if (resp.status === 401) unauthorized();
    throw new ApiError(resp.status, e.error ?? `HTTP ${resp.status}`, e.detail ?? text.slice(0, 300), e.causes ?? []);
  }
  return json as T;
}

/** nsPath is the API path of a kind's collection, in one namespace or all. */
export function nsPath(plural: string, namespace: string): string {
  return namespace ? `/api/v1/namespaces/${encodeURIComponent(namespace)}/${plural}` : `/api/v1/${plural}`;
}

export function objPath(plural: string, namespace: string, name: string): string {
  return `/api/v1/namespaces/${encodeURIComponent(namespace)}/${plural}/${encodeURIComponent(name)}`;
}
