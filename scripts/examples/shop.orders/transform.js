// Routing shop.orders by a column: one index per region.
//
// Every index the script may route to is declared in `indices`, so that when
// an order's region changes walsearch can delete it from the index it was in
// before (it deletes the order from every declared index except the new one).
var indices = ["orders-eu", "orders-us", "orders-other"];

function transform(doc, ctx) {
  switch (doc.region) {
    case "eu":
      ctx.index = "orders-eu";
      break;
    case "us":
      ctx.index = "orders-us";
      break;
    default:
      ctx.index = "orders-other";
  }
  return doc;
}

// Orders are deleted from the index like any row; returning false here would
// keep the document (for example to keep a searchable history).
function onDelete(key, ctx) {
  console.info("order deleted", key.id);
}
