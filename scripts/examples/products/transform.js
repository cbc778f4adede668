// Flattening a jsonb column of public.products.
//
// attributes {"color": "red", "size": {"eu": 42}} becomes the top-level
// fields attr_color and attr_size_eu, which map to plain keyword and number
// fields instead of one dynamic object.
function flatten(prefix, value, out) {
  if (value !== null && typeof value === "object" && !Array.isArray(value)) {
    Object.keys(value).forEach(function (k) {
      flatten(prefix + "_" + k, value[k], out);
    });
  } else {
    out[prefix] = value;
  }
}

function transform(doc, ctx) {
  var attrs = doc.attributes;
  delete doc.attributes;
  if (attrs) {
    flatten("attr", attrs, doc);
  }
  return doc;
}
