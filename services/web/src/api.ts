// One place that talks to the API: the success envelope, readable errors with their code, bearer tokens that
// refresh themselves, and the "is the API reachable" state the banner shows.

export class ApiError extends Error {
  constructor(
    public status: number,
    public code: string,
    public detail: string,
  ) {
    super(detail);
  }
  /** "line N" in a validation message (Dockerfile / compose refusals carry it), else null. */
  get line(): number | null {
    const m = /\bline (\d+)/i.exec(this.detail);
    return m ? Number(m[1]) : null;
  }
}

type Listener = () => void;

function store<T>(initial: T) {
  let value = initial;
  const listeners = new Set<Listener>();
  return {
    get: () => value,
    set(next: T) {
      if (next === value) return;
      value = next;
      listeners.forEach((l) => l());
    },
    subscribe(l: Listener) {
      listeners.add(l);
      return () => listeners.delete(l);
    },
  };
}

/** false while the API does not answer at all (network error); the banner polls /api/health until it does. */
export const online = store(true);

export interface Tokens {
  access_token: string;
  refresh_token: string;
  token_type?: string;
}

const KEY = "portside.tokens";
export const tokens = store<Tokens | null>(readTokens());

function readTokens(): Tokens | null {
  try {
    const raw = localStorage.getItem(KEY);
    return raw ? (JSON.parse(raw) as Tokens) : null;
  } catch {
    return null;
  }
}

export function setTokens(next: Tokens | null) {
  if (next) localStorage.setItem(KEY, JSON.stringify(next));
  else localStorage.removeItem(KEY);
  tokens.set(next);
}

function unwrap(body: unknown): unknown {
  if (body && typeof body === "object" && "success" in body && "data" in body) return (body as { data: unknown }).data;
  return body;
}

async function errorFrom(resp: Response): Promise<ApiError> {
  let detail = `${resp.status} ${resp.statusText}`.trim();
  let code = `HTTP_${resp.status}`;
  try {
    const body = await resp.json();
    if (typeof body?.detail === "string") detail = body.detail;
    else if (body?.detail) detail = JSON.stringify(body.detail);
    if (typeof body?.error_code === "string") code = body.error_code;
  } catch {
    /* not JSON: keep the status line */
  }
  return new ApiError(resp.status, code, detail);
}

let refreshing: Promise<boolean> | null = null;

/** Trade the refresh token for a new pair; one refresh at a time however many requests saw the 401. */
export function refreshTokens(): Promise<boolean> {
  const current = tokens.get();
  if (!current?.refresh_token) return Promise.resolve(false);
  refreshing ??= (async () => {
    try {
      const resp = await fetch("/api/auth/refresh", {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ refresh_token: current.refresh_token }),
      });
      if (!resp.ok) {
        if (resp.status === 401 || resp.status === 403) setTokens(null);
        return false;
      }
      setTokens(unwrap(await resp.json()) as Tokens);
      return true;
    } catch {
      return false;
    } finally {
      refreshing = null;
    }
  })();
  return refreshing;
}

export function authHeaders(): Record<string, string> {
  const t = tokens.get();
  return t ? { Authorization: `Bearer ${t.access_token}` } : {};
}

/** fetch with the bearer token; a 401 refreshes once and retries. Network errors mark the API offline. */
export async function rawFetch(path: string, init: RequestInit = {}, retry = true): Promise<Response> {
  let resp: Response;
  try {
    resp = await fetch(path, { ...init, headers: { ...authHeaders(), ...(init.headers as Record<string, string>) } });
  } catch (exc) {
    if ((exc as Error)?.name === "AbortError") throw exc;
    online.set(false);
    throw new ApiError(0, "CONNECTION_LOST", "Portside's API does not answer; retrying in the background.");
  }
  online.set(true);
  if (resp.status === 401 && retry && tokens.get() && !path.startsWith("/api/auth/")) {
    if (await refreshTokens()) return rawFetch(path, init, false);
  }
  return resp;
}

export async function api<T = unknown>(method: string, path: string, body?: unknown, init: RequestInit = {}): Promise<T> {
  const headers: Record<string, string> = { Accept: "application/json" };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const resp = await rawFetch(path, {
    ...init,
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (!resp.ok) throw await errorFrom(resp);
  if (resp.status === 204) return undefined as T;
  return unwrap(await resp.json()) as T;
}

// ---- shapes (as the API answers them) ------------------------------------------------------------------------

export interface User {
  id: number;
  email: string;
  role: "admin" | "member" | "viewer" | string;
  disabled?: boolean;
  is_active?: boolean;
  created_at?: string;
}

export interface Repository {
  id: number;
  name: string;
  path: string;
  url: string | null;
  branch: string | null;
  created_at: string;
}

export interface Evidence {
  file: string;
  reason: string;
  weight?: number;
}

export interface Detection {
  stack: string;
  confidence: number;
  framework: string | null;
  package_manager: string | null;
  runtime_version: string | null;
  has_dockerfile: boolean;
  has_compose: boolean;
  detected_db: string;
  internal_port: number | null;
  start_command: string | null;
  build_command?: string | null;
  app_path: string;
  evidence: Evidence[];
  warnings: string[];
  alternatives: string[];
  /** The other stacks found here that their provider can build, by stack: what `stack` on generate may choose. */
  alternative_plans?: Record<string, unknown>;
  apps: Detection[];
  primary_app?: string | null;
}

export interface DeploymentSummary {
  id: number;
  repository_id: number;
  repo_name: string;
  stack: string | null;
  app_path: string;
  port: number | null;
  status: string;
  created_at: string;
  started_at?: string | null;
  container_id: string | null;
}

export interface Deployment {
  id: number;
  repository_id: number;
  repo_name: string;
  stack: string | null;
  framework: string | null;
  package_manager: string | null;
  app_path: string;
  confidence_score: number | null;
  internal_port: number | null;
  detected_db: string | null;
  assigned_port: number | null;
  requested_port: number | null;
  status: string;
  dockerfile_content: string | null;
  compose_content: string | null;
  dockerignore_content: string | null;
  error_message: string | null;
  error_code: string | null;
  running_image_tag: string | null;
  previous_image_tag: string | null;
  cpu_limit: number | null;
  memory_limit: string | null;
  build_seconds: number | null;
  created_at: string;
  updated_at: string;
  started_at: string | null;
  stopped_at: string | null;
  url: string | null;
}

/** GET/PUT /api/deployments/{id}/domains: `urls` pairs with `domains` when the proxy runs (empty otherwise). */
export interface Domains {
  domains: string[];
  urls: string[];
  default_domain: string | null;
}

/** GET /api/deployments/{id}/releases: what ran after each successful start, newest first. */
export interface Release {
  id: number;
  image_tag: string;
  created_at: string;
  cpu_limit: number | null;
  memory_limit: string | null;
  env_keys: string[];
}

export interface Status {
  deployment_id: number;
  status: string;
  port: number | null;
  url: string | null;
  container_state: string | null;
  health: string | null;
  uptime_seconds: number | null;
  cpu_percent: number | null;
  memory_mb: number | null;
  memory_limit_mb: number | null;
  engine_error: string | null;
}

/** GET /api/deployments/{id}/metrics: the runner's samples of every compose service, oldest first. */
export interface ServiceUsage {
  cpu_percent: number | null;
  memory_mb: number | null;
  network_rx_bytes: number | null;
  network_tx_bytes: number | null;
}

export interface UsageSample {
  at: string;
  services: Record<string, ServiceUsage>;
  total: ServiceUsage;
}

export interface AppMetrics {
  deployment_id: number;
  interval_seconds: number;
  samples: UsageSample[];
}

export interface TimelineEvent {
  id: number;
  status: string;
  message: string | null;
  error_code: string | null;
  created_at: string;
}

export interface EnvVar {
  key: string;
  value: string;
  secret: boolean;
  build: boolean;
}
