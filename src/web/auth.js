// Auth: a token in the URL fragment (#token=...) goes out as a Bearer header. Read on every
// request, so changing the fragment applies to the next connection. The fragment never
// reaches the server by itself: browsers do not send it.

function authToken() {
  const t = new URLSearchParams(location.hash.replace(/^#/, '')).get('token');
  return t || null;
}

export function withAuth(headers = {}) {
  const t = authToken();
  if (t) headers.Authorization = 'Bearer ' + t;
  return headers;
}
