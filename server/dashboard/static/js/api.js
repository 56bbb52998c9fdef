// The REST API with the signed-in token. The token lives in sessionStorage (never a cookie), so it
// ends with the tab and no other site can make the browser send it.

const TOKEN_KEY = "runbatch.token";
const USER_KEY = "runbatch.user";

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

let unauthorized = () => {};

export function onUnauthorized(handler) {
  unauthorized = handler;
}

export const session = {
  token: () => sessionStorage.getItem(TOKEN_KEY),
  user: () => {
    try {
      return JSON.parse(sessionStorage.getItem(USER_KEY) || "null");
    } catch {
      return null;
    }
  },
  save(token, user) {
    sessionStorage.setItem(TOKEN_KEY, token);
    sessionStorage.setItem(USER_KEY, JSON.stringify(user));
  },
  clear() {
    sessionStorage.removeItem(TOKEN_KEY);
    sessionStorage.removeItem(USER_KEY);
  },
};

async function request(path, { method = "GET", body, token = session.token(), signal } = {}) {
  const headers = { Accept: "application/json" };
  if (token) headers.Authorization = `Bearer ${token}`;
  const init = { method, headers, signal };
  if (body !== undefined) {
    headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const response = await fetch(`/api/v1${path}`, init);
  if (!response.ok) {
    let code = `HTTP_${response.status}`;
    let message = `${method} ${path} answered ${response.status} ${response.statusText}`;
    try {
      const error = (await response.json()).error;
      if (error) ({ code, message } = error);
    } catch {
      // not the API's error body (a proxy's page): keep the status line
    }
    throw new ApiError(response.status, code, message);
  }
  return response;
}

export async function api(path, options = {}) {
  try {
    const response = await request(path, options);
    return response.status === 204 ? null : await response.json();
  } catch (err) {
    if (err instanceof ApiError && err.status === 401 && options.token === undefined) {
      session.clear();
      unauthorized(err);
    }
    throw err;
  }
}

export const enc = encodeURIComponent;

// A route this server does not have (an older server), as opposed to a resource that is not there.
export function isMissingRoute(err) {
  return err instanceof ApiError && (err.status === 405 || (err.status === 404 && err.message === "Not Found"));
}

// Who a token belongs to: /me where the server has it, else any authenticated read proves the token.
export async function identify(token) {
  try {
    const me = await api("/me", { token });
    return { name: me.name, roles: me.roles || [], admin: Boolean(me.admin), via: "token" };
  } catch (err) {
    if (!isMissingRoute(err)) throw err;
  }
  await api("/jobs?limit=1", { token });
  return { name: "API token", roles: [], admin: false, via: "token" };
}

export async function login(username, password) {
  const answer = await api("/login", { method: "POST", body: { username, password }, token: "" });
  // "password": the token is this sign-in's own, so signing out revokes it.
  const user = { name: answer.user?.name || username, roles: answer.user?.roles || [], via: "password" };
  return { token: answer.token, user };
}

// Sign out. A token the sign-in issued is revoked; an API token pasted in stays valid, since the
// user's scripts and CLI still use it: it is only forgotten by this tab.
export async function logout() {
  const user = session.user();
  try {
    if (user && user.via === "password") await api("/logout", { method: "POST", token: session.token() });
  } catch {
    // already expired or revoked: signing out here still holds
  } finally {
    session.clear();
  }
}

// A file from a stage: fetched with the token (a plain link cannot send it), then saved.
export async function download(database, schema, stage, path) {
  const response = await request(
    `/databases/${enc(database)}/schemas/${enc(schema)}/stages/${enc(stage)}/files/${path.split("/").map(enc).join("/")}`,
  );
  const url = URL.createObjectURL(await response.blob());
  const a = document.createElement("a");
  a.href = url;
  a.download = path.split("/").pop();
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}

// Every schema of every database, for pages that show a resource across all of them.
export async function allSchemas() {
  const databases = await api("/databases");
  const lists = await Promise.all(databases.map((d) => api(`/databases/${enc(d.name)}/schemas`)));
  return lists.flat();
}
