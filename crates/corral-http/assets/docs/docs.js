// Corral's /docs page: Swagger UI over the caller's own OpenAPI document.
//
// The token typed into the bar (a JWT or a crl_… API key) is used twice:
//   1. GET /openapi.json is fetched with `Authorization: Bearer <token>`, so the document shown
//      is the caller tenant's (custom attributes included); without a token it is the base one.
//   2. The token authorizes Swagger UI's `bearer` security scheme, so "Try it out" requests
//      carry the same header.
// Authorizing `bearer` in Swagger UI's own "Authorize" dialog does the same as the bar.
// The token lives in this tab's sessionStorage only (gone when the tab closes) and is sent to
// this origin only. Served by crates/corral-http/src/routes/docs.rs.
(function () {
  'use strict';

  var STORAGE_KEY = 'corral.docs.token';
  var SCHEME = 'bearer';

  var form = document.getElementById('token-form');
  var input = document.getElementById('token');
  var clearButton = document.getElementById('token-clear');
  var statusLine = document.getElementById('token-status');

  var token = readStoredToken();
  var loading = 0; // the latest document request; older answers are dropped
  var ui;

  function readStoredToken() {
    try {
      return window.sessionStorage.getItem(STORAGE_KEY) || '';
    } catch (e) {
      return '';
    }
  }

  function storeToken(value) {
    try {
      if (value) window.sessionStorage.setItem(STORAGE_KEY, value);
      else window.sessionStorage.removeItem(STORAGE_KEY);
    } catch (e) {
      /* storage disabled: the token lasts until the page is reloaded */
    }
  }

  function showStatus(state, text) {
    statusLine.dataset.state = state;
    statusLine.textContent = text;
  }

  // What the token says about itself, for the status line only (the server verifies it).
  function describe(value) {
    if (/^crl_[0-9a-f]+_/.test(value)) return 'API key ' + value.split('_').slice(0, 2).join('_') + '_…';
    var parts = value.split('.');
    if (parts.length === 3) {
      try {
        var binary = atob(parts[1].replace(/-/g, '+').replace(/_/g, '/'));
        var bytes = Uint8Array.from(binary, function (c) {
          return c.charCodeAt(0);
        });
        var claims = JSON.parse(new TextDecoder().decode(bytes));
        var who = claims.tenant_id ? 'JWT for tenant ' + claims.tenant_id : 'JWT';
        if (claims.sub) who += ', subject ' + claims.sub;
        if (claims.exp) who += ', expires ' + new Date(claims.exp * 1000).toLocaleString();
        return who;
      } catch (e) {
        /* not a readable JWT: fall through */
      }
    }
    return 'token';
  }

  function errorMessage(response, body) {
    if (body && body.error && body.error.code) return body.error.code + ': ' + body.error.message;
    return response.status + ' ' + response.statusText;
  }

  // Loads /openapi.json with the current token and hands it to Swagger UI.
  function loadDocument() {
    var request = ++loading;
    var sent = token;
    var headers = { Accept: 'application/json' };
    if (sent) headers.Authorization = 'Bearer ' + sent;
    showStatus('loading', 'Loading the document…');
    return fetch('/openapi.json', { headers: headers, credentials: 'omit', cache: 'no-store' })
      .then(function (response) {
        return response.text().then(function (text) {
          return { response: response, text: text };
        });
      })
      .then(function (answer) {
        if (request !== loading) return;
        if (!answer.response.ok) {
          var body = null;
          try {
            body = JSON.parse(answer.text);
          } catch (e) {
            /* not JSON */
          }
          if (sent) {
            // Refused token: forget it and show the base document instead.
            setToken('');
            input.value = sent;
            return loadDocument().then(function () {
              showStatus('error', 'The token was refused (' + errorMessage(answer.response, body) + '); showing the base document.');
            });
          }
          showStatus('error', 'Could not load /openapi.json (' + errorMessage(answer.response, body) + ').');
          return;
        }
        ui.specActions.updateSpec(answer.text);
        if (sent) {
          ui.preauthorizeApiKey(SCHEME, sent);
          showStatus('tenant', 'Using ' + describe(sent) + ': this is your tenant\'s document, and "Try it out" sends the token.');
        } else {
          var authorized = ui.authSelectors.authorized();
          if (authorized && authorized.get(SCHEME)) ui.authActions.logout([SCHEME]);
          showStatus('anonymous', 'No token: this is the base document. Paste a JWT or a crl_… API key to see your tenant\'s document and try requests.');
        }
      })
      .catch(function (e) {
        if (request === loading) showStatus('error', 'Could not load /openapi.json (' + e.message + ').');
      });
  }

  // Sets the token (the caller reloads the document).
  function setToken(value) {
    token = (value || '').trim().replace(/^Bearer\s+/i, '');
    storeToken(token);
    input.value = token;
  }

  // Keeps Swagger UI's "Authorize" dialog and the bar in step.
  function SyncTokenPlugin() {
    return {
      statePlugins: {
        auth: {
          wrapActions: {
            authorize: function (original) {
              return function (payload) {
                var result = original(payload);
                var entry = payload && payload[SCHEME];
                if (entry && typeof entry.value === 'string' && entry.value !== token) {
                  setToken(entry.value);
                  loadDocument();
                }
                return result;
              };
            },
            logout: function (original) {
              return function (names) {
                var result = original(names);
                if (token && names && names.indexOf && names.indexOf(SCHEME) >= 0) {
                  setToken('');
                  loadDocument();
                }
                return result;
              };
            },
          },
        },
      },
    };
  }

  ui = window.SwaggerUIBundle({
    dom_id: '#swagger-ui',
    deepLinking: true,
    displayRequestDuration: true,
    defaultModelsExpandDepth: 0,
    persistAuthorization: false,
    validatorUrl: null,
    presets: [window.SwaggerUIBundle.presets.apis],
    plugins: [SyncTokenPlugin],
    layout: 'BaseLayout',
  });
  window.ui = ui;

  form.addEventListener('submit', function (event) {
    event.preventDefault();
    setToken(input.value);
    loadDocument();
  });
  clearButton.addEventListener('click', function () {
    setToken('');
    loadDocument();
  });

  input.value = token;
  loadDocument();
})();
