"""The questions a category asks (Open311 service attributes): the shipped table reads, answers are
checked and normalised in one place, and a mistake in an operator's table is said, not swallowed."""

from __future__ import annotations

import pytest

from gridmap.errors import Invalid
from gridmap.incident_rules import default_categories
from gridmap.service_attributes import check_answers, default_attributes, read_attribute_table

HEADER = "category_code,code,datatype,required,order,description_zh,description_en,values\n"


ONE_OF_EACH = ("X,n,number,true,1,数量,Count,\n"
               "X,when,datetime,false,2,时间,When,\n"
               "X,note,string,false,3,备注,Note,\n"
               "X,pick,singlevaluelist,false,4,选择,Pick,a=甲/A;b=乙/B\n"
               "X,many,multivaluelist,false,5,多选,Many,a=甲/A;b=乙/B\n")
"""A category asking one question of each kind (the first required)."""


def questions(rows: str):
    return read_attribute_table(HEADER + rows)


def test_the_shipped_questions_belong_to_shipped_categories() -> None:
    codes = {c.code for c in default_categories()}
    shipped = default_attributes()
    assert set(shipped) <= codes and {"0102", "0501"} <= set(shipped)
    for attrs in shipped.values():  # each question named once and placed once in its category
        assert len({a.code for a in attrs}) == len(attrs) and len({a.order for a in attrs}) == len(attrs)
        assert all(a.description_zh and a.description_en for a in attrs)


def test_answers_are_normalised() -> None:
    table = questions(ONE_OF_EACH)["X"]
    got = check_answers("X", table, {"n": " 3 ", "when": "2026-12-03T09:30:00Z", "note": "  门口  ", "pick": "b",
                                     "many": ["b", "a", "b"]})
    assert got == {"n": 3, "when": "2026-12-03T09:30:00+00:00", "note": "门口", "pick": "b", "many": ["b", "a"]}
    assert check_answers("X", table, {"n": "2.5"}) == {"n": 2.5}
    assert check_answers("X", table, {"n": 1, "note": "", "many": []}) == {"n": 1}  # empty answers are no answers


@pytest.mark.parametrize(("answers", "en", "zh"), [
    ({}, "n (Count) is required", "n（数量）必须填写"),
    ({"n": ""}, "n (Count) is required", "必须填写"),
    ({"n": "inf"}, "'inf' is not a number", "不是数字"),
    ({"n": "1", "when": "tomorrow"}, "not an ISO 8601 time", "不是 ISO 8601 时间"),
    ({"n": "1", "note": "长" * 201}, "longer than 200 characters", "超过 200 个字"),
    ({"n": "1", "pick": ["a", "b"]}, "give one value", "只能填一个值"),
    ({"n": "1", "pick": "c"}, "c not among a, b", "c 不在可选值 a、b 中"),
    ({"n": "1", "many": ["a", "z"]}, "z not among a, b", "z 不在可选值"),
    ({"n": "1", "colour": "red"}, "asks no question colour", "没有问题 colour"),
])
def test_wrong_answers_are_refused_in_both_languages(answers: dict, en: str, zh: str) -> None:
    table = questions(ONE_OF_EACH)["X"]
    with pytest.raises(Invalid) as refused:
        check_answers("X", table, answers)
    assert en in refused.value.en and zh in refused.value.zh


def test_every_problem_is_said_at_once() -> None:
    table = questions("X,a,number,true,1,甲,A,\nX,b,number,true,2,乙,B,\n")["X"]
    with pytest.raises(Invalid) as refused:
        check_answers("X", table, {"b": "x"})
    assert "a (A) is required" in refused.value.en and "b (B): 'x' is not a number" in refused.value.en


@pytest.mark.parametrize(("row", "said"), [
    ("X,a,colour,true,1,甲,A,\n", "datatype 'colour'"),
    ("X,a,singlevaluelist,true,1,甲,A,\n", "list questions need values"),
    ("X,a,number,true,1,甲,A,k=值/V\n", "list questions need values"),
    ("X,a,singlevaluelist,true,1,甲,A,novalue\n", "is not key=中文/English"),
])
def test_a_mistake_in_the_table_is_said(row: str, said: str) -> None:
    with pytest.raises(ValueError, match=said):
        questions(row)
