// The API client: where the API is, the session's tokens, and one request function that
// signs requests and refreshes an expired access token once (single flight).
//
// Tokens live in sessionStorage (this tab only, gone when it closes) and are sent only in
// the Authorization header: never in a URL, never logged. Signing out clears them.

const SESSION_KEY = "taskmill.session";
let apiBase = "";
let refreshing = null;
// Why the session ended, when it was not the user's own sign-out: the sign-in form says it.
let endedNotice = "";
const listeners = new Set();
// Whether the listeners were last told there is no session (a sign-out, an ended session):
// a request that finds none after that (one in flight during a sign-out, the other reads of
// the same refresh) must neither route again nor say the session ended.
let toldSignedOut = false;

export class ApiError extends Error {
  constructor(status, code, message, details) {
    super(message);
    this.status = status;
    this.code = code;
    this.details = details;
  }
}

// config.json says where the API is: "" (the local stack serves the console on the API's
// own origin) or the environment's API URL, written at deploy time.
export async function loadConfig() {
  const response = await fetch("config.json", { cache: "no-store" });
  if (!response.ok) throw new Error(`config.json: HTTP ${response.status}`);
  const config = await response.json();
  apiBase = String(config.apiUrl || "").replace(/\/+$/, "");
  return config;
}

const SESSION_ENDED =
  "Your session has ended (it expired, was signed out elsewhere, or the account was disabled). Sign in again.";

// A stored session this console wrote: tokens, their expiry and who signed in.
function wellFormed(value) {
  return Boolean(
    value &&
      typeof value === "object" &&
      typeof value.access === "string" &&
      typeof value.refresh === "string" &&
      typeof value.expiresAt === "number" &&
      value.user &&
      typeof value.user === "object" &&
      typeof value.user.email === "string" &&
      typeof value.user.role === "string",
  );
}

export function session() {
  const text = sessionStorage.getItem(SESSION_KEY);
  if (text === null) return null;
  let value = null;
  try {
    value = JSON.parse(text);
  } catch {
    value = null;
  }
  if (wellFormed(value)) return value;
  // Something else wrote it (an extension, a hand edit, an older console): it cannot be
  // used, and left there every page would stop on it. The sign-in form says what happened.
  sessionStorage.removeItem(SESSION_KEY);
  if (!endedNotice) endedNotice = "Your session could not be read. Sign in again.";
  return null;
}

function store(value) {
  if (value) sessionStorage.setItem(SESSION_KEY, JSON.stringify(value));
  else sessionStorage.removeItem(SESSION_KEY);
  toldSignedOut = !value;
  for (const listener of listeners) listener(value);
}

// Called with the new session (or null) whenever it changes: sign in, refresh, sign out.
export function onSessionChange(listener) {
  listeners.add(listener);
}

function fromTokens(tokens, user) {
  return {
    access: tokens.access_token,
    refresh: tokens.refresh_token,
    // Refresh a little early: a request must not leave with a token about to expire.
    expiresAt: Date.now() + Math.max(0, tokens.expires_in - 30) * 1000,
    user,
  };
}

async function send(method, path, body, token) {
  const headers = { Accept: "application/json" };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (token) headers.Authorization = `Bearer ${token}`;
  let response;
  try {
    response = await fetch(apiBase + path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      credentials: "omit",
      cache: "no-store",
    });
  } catch {
    throw new ApiError(0, "network", "The API cannot be reached: check your connection, or whether the API is running.");
  }
  const text = await response.text();
  let data = null;
  if (text) {
    try {
      data = JSON.parse(text);
    } catch {
      data = null;
    }
  }
  if (!response.ok) {
    const error = (data && data.error) || {};
    throw new ApiError(
      response.status,
      error.code || `http_${response.status}`,
      error.message || `The API answered ${response.status}.`,
      error.details,
    );
  }
  return data;
}

export async function signIn(email, password) {
  const tokens = await send("POST", "/v1/auth/login", { email, password });
  const user = await send("GET", "/v1/auth/me", undefined, tokens.access_token);
  store(fromTokens(tokens, user));
  return user;
}

// Rotates the pair. A refresh token is single-use, so concurrent requests share one refresh.
function refresh(current) {
  if (!refreshing) {
    refreshing = send("POST", "/v1/auth/refresh", { refresh_token: current.refresh })
      .then((tokens) => {
        const next = fromTokens(tokens, current.user);
        store(next);
        return next;
      })
      .catch((error) => {
        if (error.status === 400 || error.status === 401) {
          endedNotice = SESSION_ENDED;
          store(null);
        }
        throw error;
      })
      .finally(() => {
        refreshing = null;
      });
  }
  return refreshing;
}

// The reason the last session ended, once: the sign-in form shows it.
export function takeSessionNotice() {
  const notice = endedNotice;
  endedNotice = "";
  return notice;
}

export async function signOut() {
  const current = session();
  store(null);
  if (current) {
    // Revoke the refresh token; the session is gone locally whatever the answer.
    try {
      await send("POST", "/v1/auth/logout", { refresh_token: current.refresh }, current.access);
    } catch {
      /* already signed out here; an unreachable API cannot undo that */
    }
  }
}

export async function api(method, path, body) {
  let current = session();
  if (!current) {
    // Gone while a page was open (removed in another way, or unreadable): the page goes to
    // the sign-in form, once, instead of failing every request under a signed-in header.
    if (!toldSignedOut) {
      if (!endedNotice) endedNotice = SESSION_ENDED;
      store(null);
    }
    throw new ApiError(401, "signed_out", "Sign in first.");
  }
  if (Date.now() >= current.expiresAt) current = await refresh(current);
  try {
    return await send(method, path, body, current.access);
  } catch (error) {
    // An access token can expire (or be refused) between the check above and the answer.
    if (error.status !== 401) throw error;
    const latest = session();
    if (!latest) throw error;
    const renewed = latest.access !== current.access ? latest : await refresh(latest);
    return send(method, path, body, renewed.access);
  }
}

export function query(params) {
  const search = new URLSearchParams();
  for (const [name, value] of Object.entries(params)) {
    if (value !== undefined && value !== null && value !== "") search.set(name, value);
  }
  const text = search.toString();
  return text ? `?${text}` : "";
}
