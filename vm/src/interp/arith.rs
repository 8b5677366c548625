//! Arithmetic, comparison, conditions and text building. Each handler tries the int (or bool)
//! case first and leaves the rest to a named slow path. Int overflow raises "Overflow"; int
//! division or remainder by zero raises "DivisionByZero"; mixed int/float computes in float.

use crate::compare;
use crate::error::{kind, Raise, R};
use crate::format::RegRange;
use crate::label::Label;
use crate::text::write_text;
use crate::value::{Kind, StrRef, Value};

use super::exec::Exec;

fn overflow(op: &str) -> Raise {
    Raise::rt(kind::OVERFLOW, format!("integer overflow in {op}"))
}

fn operands_err(verb: &str, x: Value, y: Value) -> Raise {
    let hint = if matches!(x.kind(), Kind::Str(_)) || matches!(y.kind(), Kind::Str(_)) {
        " (use interpolation to build text: \"{a}{b}\")"
    } else {
        ""
    };
    Raise::rt(
        kind::TYPE,
        format!(
            "cannot {verb} {} and {}{hint}",
            x.type_name(),
            y.type_name()
        ),
    )
}

impl Exec<'_> {
    #[inline(always)]
    fn join(&mut self, a: Label, b: Label) -> Label {
        self.cx.labels.join(a, b)
    }

    /// The numeric operators: ints through `int` (None = overflow), floats through `float`.
    #[inline(always)]
    fn numeric(
        &mut self,
        x: Value,
        y: Value,
        verb: &str,
        int: fn(i64, i64) -> Option<i64>,
        float: fn(f64, f64) -> f64,
    ) -> R<Value> {
        let kind = match (x.kind(), y.kind()) {
            (Kind::Int(a), Kind::Int(b)) => Kind::Int(int(a, b).ok_or_else(|| overflow(verb))?),
            (Kind::Float(a), Kind::Float(b)) => Kind::Float(float(a, b)),
            (Kind::Int(a), Kind::Float(b)) => Kind::Float(float(a as f64, b)),
            (Kind::Float(a), Kind::Int(b)) => Kind::Float(float(a, b as f64)),
            _ => return Err(operands_err(verb, x, y)),
        };
        Ok(Value::with(kind, self.join(x.label(), y.label())))
    }

    #[inline(never)]
    pub(super) fn add(&mut self, x: Value, y: Value) -> R<Value> {
        if let (Kind::Int(a), Kind::Int(b)) = (x.kind(), y.kind()) {
            let s = a.checked_add(b).ok_or_else(|| overflow("add"))?;
            return Ok(Value::with(Kind::Int(s), self.join(x.label(), y.label())));
        }
        self.add_slow(x, y)
    }

    #[inline(never)]
    fn add_slow(&mut self, x: Value, y: Value) -> R<Value> {
        if let (Kind::Str(a), Kind::Str(b)) = (x.kind(), y.kind()) {
            let label = self.join(x.label(), y.label());
            return self.add_strs(a, b, label);
        }
        self.numeric(x, y, "add", i64::checked_add, |a, b| a + b)
    }

    /// `a + b` for two strings, with the result labelled `label`.
    pub(super) fn add_strs(&mut self, a: StrRef, b: StrRef, label: Label) -> R<Value> {
        let s = self
            .cx
            .heap
            .concat(a, b)?
            .ok_or_else(|| Raise::rt(kind::VALUE, "string too long (over 4 GiB)"))?;
        Ok(Value::with(Kind::Str(s), label))
    }

    #[inline(never)]
    pub(super) fn sub(&mut self, x: Value, y: Value) -> R<Value> {
        self.numeric(x, y, "subtract", i64::checked_sub, |a, b| a - b)
    }

    #[inline(never)]
    pub(super) fn mul(&mut self, x: Value, y: Value) -> R<Value> {
        self.numeric(x, y, "multiply", i64::checked_mul, |a, b| a * b)
    }

    pub(super) fn div(&mut self, x: Value, y: Value) -> R<Value> {
        if let (Kind::Int(_), Kind::Int(0)) = (x.kind(), y.kind()) {
            return Err(Raise::rt(kind::DIV_ZERO, "division by zero"));
        }
        self.numeric(x, y, "divide", i64::checked_div, |a, b| a / b)
    }

    pub(super) fn rem(&mut self, x: Value, y: Value) -> R<Value> {
        if let (Kind::Int(_), Kind::Int(0)) = (x.kind(), y.kind()) {
            return Err(Raise::rt(kind::DIV_ZERO, "remainder by zero"));
        }
        self.numeric(x, y, "take the remainder of", i64::checked_rem, |a, b| {
            a % b
        })
    }

    pub(super) fn neg(&mut self, x: Value) -> R<Value> {
        let kind = match x.kind() {
            Kind::Int(i) => Kind::Int(i.checked_neg().ok_or_else(|| overflow("negate"))?),
            Kind::Float(f) => Kind::Float(-f),
            _ => {
                return Err(Raise::rt(
                    kind::TYPE,
                    format!("cannot negate a {}", x.type_name()),
                ))
            }
        };
        Ok(Value::with(kind, x.label()))
    }

    #[inline(never)]
    pub(super) fn add_imm(&mut self, x: Value, imm: i32) -> R<Value> {
        let kind = match x.kind() {
            Kind::Int(i) => Kind::Int(i.checked_add(imm as i64).ok_or_else(|| overflow("add"))?),
            Kind::Float(f) => Kind::Float(f + imm as f64),
            _ => return Err(operands_err("add", x, Value::int(imm as i64))),
        };
        Ok(Value::with(kind, x.label()))
    }

    pub(super) fn not(&mut self, x: Value) -> R<Value> {
        match x.kind() {
            Kind::Bool(b) => Ok(Value::with(Kind::Bool(!b), x.label())),
            _ => Err(Raise::rt(
                kind::TYPE,
                format!("`not` needs a bool, found {}", x.type_name()),
            )),
        }
    }

    /// The error of a condition that is not a bool.
    #[cold]
    #[inline(never)]
    pub(super) fn not_bool(&mut self, x: Value) -> Raise {
        Raise::rt(
            kind::TYPE,
            format!("condition must be a bool, found {}", x.type_name()),
        )
    }

    /// `x < y` as a branch condition.
    #[inline(never)]
    pub(super) fn less(&mut self, x: Value, y: Value) -> R<bool> {
        if let (Kind::Int(a), Kind::Int(b)) = (x.kind(), y.kind()) {
            return Ok(a < b);
        }
        Ok(compare::order(self.cx.heap, x, y)? == Some(std::cmp::Ordering::Less))
    }

    /// `x == y` (or `!=` when `want` is false).
    #[inline(never)]
    pub(super) fn eq(&mut self, x: Value, y: Value, want: bool) -> R<Value> {
        let same = match (x.kind(), y.kind()) {
            (Kind::Int(a), Kind::Int(b)) => a == b,
            _ => compare::equal(self.cx.heap, self.cx.module, x, y)?,
        };
        Ok(Value::with(
            Kind::Bool(same == want),
            self.join(x.label(), y.label()),
        ))
    }

    /// `x < y`, or `x <= y` with `or_equal`.
    #[inline(never)]
    pub(super) fn lt(&mut self, x: Value, y: Value, or_equal: bool) -> R<Value> {
        use std::cmp::Ordering::{Equal, Less};
        let b = match (x.kind(), y.kind()) {
            (Kind::Int(a), Kind::Int(b)) => a < b || (or_equal && a == b),
            _ => match compare::order(self.cx.heap, x, y)? {
                Some(Less) => true,
                Some(Equal) => or_equal,
                _ => false,
            },
        };
        Ok(Value::with(Kind::Bool(b), self.join(x.label(), y.label())))
    }

    /// The text of `x` as a string value (strings unchanged).
    pub(super) fn stringify(&mut self, x: Value) -> R<Value> {
        if let Kind::Str(_) = x.kind() {
            return Ok(x);
        }
        let text = self.cx.text(x)?;
        let label = self.cx.text_label(x)?;
        Ok(self.cx.new_str(text)?.labelled(label))
    }

    /// The concatenated texts of `parts`. When the first part is a whole unfrozen string buffer
    /// and the others are scalars or strings of other buffers, the rest is appended in place.
    pub(super) fn concat(&mut self, regs: &[Value], parts: RegRange) -> R<Value> {
        let start = parts.start as usize;
        let vals = &regs[start..start + parts.count as usize];
        let mut label = Label::PUBLIC;
        for v in vals {
            let shown = self.cx.text_label(*v)?;
            label = self.join(label, shown);
        }
        let heap = &mut *self.cx.heap;
        let module = self.cx.module;
        if let Some((first, rest)) = vals.split_first() {
            if let Kind::Str(s) = first.kind() {
                let buf = heap.strbuf(s.obj)?;
                let whole = !buf.frozen && buf.text.len() == s.len as usize;
                let simple = rest.iter().all(|v| match v.kind() {
                    Kind::Str(r) => r.obj != s.obj,
                    k => Value::new(k).obj().is_none(),
                });
                if whole && simple {
                    let was_ascii = buf.ascii;
                    let mut text = std::mem::take(&mut heap.strbuf_mut(s.obj)?.text);
                    let before = text.capacity();
                    let old_len = text.len();
                    let mut result = Ok(());
                    for v in rest {
                        result = write_text(&mut text, heap, module, *v);
                        if result.is_err() {
                            break;
                        }
                    }
                    let after = text.capacity();
                    let len = u32::try_from(text.len());
                    let ascii = was_ascii && text.get(old_len..).is_some_and(str::is_ascii);
                    let buf = heap.strbuf_mut(s.obj)?;
                    buf.text = text;
                    buf.ascii = ascii;
                    heap.resized(before, after);
                    result?;
                    let len = len.map_err(|_| Raise::rt(kind::VALUE, "string too long"))?;
                    return Ok(Value::with(Kind::Str(StrRef { obj: s.obj, len }), label));
                }
            }
        }
        let mut text = String::new();
        for v in vals {
            write_text(&mut text, heap, module, *v)?;
        }
        Ok(self.cx.new_str(text)?.labelled(label))
    }
}
