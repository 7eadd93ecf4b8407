// Starts the vendored Swagger UI (static/swagger-ui) on /api/docs; no inline script, so the
// page keeps the Content-Security-Policy every page has.
(function () {
  var root = document.getElementById("swagger-ui");
  window.ui = SwaggerUIBundle({
    url: root.dataset.url,
    domNode: root,
    deepLinking: true,
    validatorUrl: null, // no badge fetched from a validator on the internet
    defaultModelsExpandDepth: 0,
  });
})();
