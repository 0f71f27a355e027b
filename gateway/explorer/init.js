// Starts Swagger UI on the service's own OpenAPI document (same origin: the page, the document and
// the calls "Try it out" makes all go to this instance; the Content-Security-Policy allows no
// other). A file of its own because the policy allows no inline script.
"use strict";
window.addEventListener("DOMContentLoaded", function () {
  window.ui = SwaggerUIBundle({
    url: new URL("/openapi.json", window.location.origin).href,
    dom_id: "#swagger-ui",
    // The plain layout: no top bar with a box to load another document.
    presets: [SwaggerUIBundle.presets.apis],
    layout: "BaseLayout",
    tryItOutEnabled: true,
    // Never sends the document to the public validator (connect-src 'self' would block it anyway).
    validatorUrl: null,
    // No `?url=` / `?configUrl=` from the address bar: this page shows this service only.
    queryConfigEnabled: false,
    displayRequestDuration: true,
    defaultModelsExpandDepth: 0,
  });
});
