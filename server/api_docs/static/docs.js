"use strict";
// The spec and every "Try it out" call carry the bearer token from sessionStorage, the key the
// dashboard's sign-in writes; a pasted token is kept there too, for this browser tab only.
(function () {
  const KEY = "runbatch.token";
  const state = document.getElementById("token-state");
  const input = document.getElementById("token");

  function token() {
    return window.sessionStorage.getItem(KEY);
  }

  function start() {
    state.textContent = token() ? "Using the token of this tab's session." : "No token: paste an API token (or sign in on the dashboard).";
    if (!token()) {
      return;
    }
    window.SwaggerUIBundle({
      url: "/api/v1/openapi.json",
      dom_id: "#swagger-ui",
      deepLinking: true,
      presets: [window.SwaggerUIBundle.presets.apis, window.SwaggerUIStandalonePreset],
      layout: "BaseLayout",
      requestInterceptor: function (request) {
        const current = token();
        if (current) {
          request.headers.Authorization = "Bearer " + current;
        }
        return request;
      },
    });
  }

  document.getElementById("token-form").addEventListener("submit", function (event) {
    event.preventDefault();
    const value = input.value.trim();
    input.value = "";
    if (value) {
      window.sessionStorage.setItem(KEY, value);
      start();
    }
  });
  document.getElementById("forget").addEventListener("click", function () {
    window.sessionStorage.removeItem(KEY);
    window.location.reload();
  });
  start();
})();
