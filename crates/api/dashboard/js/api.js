// The dashboard's only way to the server: the public API, with the token the user signed in
// with as a bearer token, exactly as pydo or curl would call it.

const TOKEN_KEY = "drydock.token";
const PAGE_SIZE = 200;

export class ApiError extends Error {
  constructor(status, id, message) {
    super(message);
    this.status = status;
    this.id = id;
  }
}

/** Where the token lives: this tab only, unless the user asked to stay signed in. */
export const session = {
  token() {
    return sessionStorage.getItem(TOKEN_KEY) || localStorage.getItem(TOKEN_KEY);
  },
  signIn(token, remember) {
    this.signOut();
    (remember ? localStorage : sessionStorage).setItem(TOKEN_KEY, token);
  },
  signOut() {
    sessionStorage.removeItem(TOKEN_KEY);
    localStorage.removeItem(TOKEN_KEY);
  },
};

async function request(method, path, body, token = session.token()) {
  const headers = { Accept: "application/json" };
  if (token) headers.Authorization = `Bearer ${token}`;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  let response;
  try {
    response = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  } catch (error) {
    throw new ApiError(0, "network", `The drydock server cannot be reached (${error.message}).`);
  }
  if (response.status === 204) return null;
  const text = await response.text();
  let json = null;
  try {
    json = text ? JSON.parse(text) : null;
  } catch {
    // Not JSON: a proxy's error page, say. The status says what happened.
  }
  if (!response.ok) {
    const message = json?.message || `${method} ${path} answered ${response.status} ${response.statusText}`;
    // A token being checked at sign-in is not the session's: its refusal signs nobody out.
    if (response.status === 401 && token === session.token()) window.dispatchEvent(new CustomEvent("drydock:unauthorized", { detail: message }));
    throw new ApiError(response.status, json?.id || "error", message);
  }
  return json;
}

function withQuery(path, query) {
  const params = new URLSearchParams(query);
  return params.size ? `${path}${path.includes("?") ? "&" : "?"}${params}` : path;
}

export const api = {
  get: (path, query = {}) => request("GET", withQuery(path, query)),
  post: (path, body = {}) => request("POST", path, body),
  put: (path, body = {}) => request("PUT", path, body),
  delete: (path) => request("DELETE", path),

  /** Checks a token before keeping it: the account it belongs to, or an ApiError. */
  account: (token) => request("GET", "/v2/account", undefined, token),

  /** Every item of a paginated listing: the first page, then the rest at once. */
  async all(path, key, query = {}) {
    const first = await this.get(path, { ...query, page: 1, per_page: PAGE_SIZE });
    const total = first.meta?.total ?? first[key].length;
    const pages = Math.ceil(total / PAGE_SIZE);
    const rest = [];
    for (let page = 2; page <= pages; page += 1) rest.push(this.get(path, { ...query, page, per_page: PAGE_SIZE }));
    const items = [...first[key]];
    for (const more of await Promise.all(rest)) items.push(...more[key]);
    return items;
  },

  /** Starts an action on a droplet, volume or image and returns it. */
  async action(path, body) {
    return (await this.post(path, body)).action;
  },
};
