//! `COPY`: a table to the client is a plain output of its (listed)
//! columns; a query, a file, a program or binary format is not.

use pg_query::protobuf as pb;
use pg_query::protobuf::node::Node as N;

use super::checker::Checker;
use super::from::Source;
use crate::visit_gen::Visit;

impl Checker<'_> {
    pub(super) fn copy(&mut self, n: &pb::CopyStmt) {
        if let Some(q) = n.query.as_deref() {
            self.within_exactly("COPY (query)", |c| c.visit_node(q));
            return;
        }
        let (Some(rv), false) = (&n.relation, n.is_from) else {
            return;
        };
        let item = self.table_item(rv);
        let binary = n.options.iter().any(|o| match &o.node {
            Some(N::DefElem(d)) => {
                d.defname == "format"
                    && d.arg
                        .as_deref()
                        .and_then(crate::names::const_setting)
                        .is_some_and(|f| f.eq_ignore_ascii_case("binary"))
            }
            _ => false,
        });
        let elsewhere = n.is_program || !n.filename.is_empty();
        let Source::Table { schema, name, .. } = &item.source else {
            return;
        };
        let Some(pattern) = self.masked.table(schema.as_deref(), name) else {
            return;
        };
        let display = self.masked.patterns()[pattern].display_with(schema.as_deref(), name, "*");
        if binary {
            return self.violate(&display, Some("binary COPY"));
        }
        if elsewhere {
            return self.violate(&display, Some("COPY to a file or program"));
        }
        if n.attlist.is_empty() {
            self.bind(None, "*", schema.clone(), name, None, pattern);
            return;
        }
        for (pos, a) in n.attlist.iter().enumerate() {
            if let Some(N::String(s)) = &a.node
                && let Some(p) = self.masked.column(schema.as_deref(), name, &s.sval)
            {
                self.bind(
                    Some(pos),
                    &s.sval,
                    schema.clone(),
                    name,
                    Some(s.sval.clone()),
                    p,
                );
            }
        }
    }
}
