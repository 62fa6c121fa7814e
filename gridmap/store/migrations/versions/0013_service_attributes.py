"""The questions of each incident category (Open311 service attributes) and a report's answers.

``incident_categories.attributes``: the category's questions, a JSON list (code, datatype,
required, order, descriptions in both languages, the values of a list question).
``incidents.attributes``: the answers of a report, a JSON object keyed by question code.
Categories still as shipped (same code and Chinese name) get the shipped questions.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-03
"""

from __future__ import annotations

import json

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


SHIPPED_QUESTIONS = json.loads(r"""{
 "0102": ["井盖缺失或破损", [{"code": "cover_state", "datatype": "singlevaluelist", "required": true, "order": 1, "description_zh": "井盖状况", "description_en": "State of the cover", "values": [{"key": "missing", "name_zh": "缺失", "name_en": "Missing"}, {"key": "broken", "name_zh": "破损", "name_en": "Broken"}, {"key": "displaced", "name_zh": "移位或松动", "name_en": "Displaced or loose"}]}, {"code": "location", "datatype": "singlevaluelist", "required": false, "order": 2, "description_zh": "所在位置", "description_en": "Where it is", "values": [{"key": "carriageway", "name_zh": "车行道", "name_en": "Carriageway"}, {"key": "footway", "name_zh": "人行道", "name_en": "Footway"}, {"key": "green", "name_zh": "绿地", "name_en": "Green space"}]}]],
 "0201": ["暴露垃圾", [{"code": "amount", "datatype": "singlevaluelist", "required": false, "order": 1, "description_zh": "垃圾数量", "description_en": "How much rubbish", "values": [{"key": "bags", "name_zh": "几袋", "name_en": "A few bags"}, {"key": "pile", "name_zh": "一堆", "name_en": "A pile"}, {"key": "truck", "name_zh": "需车辆清运", "name_en": "A truckload"}]}]],
 "0302": ["占道经营", [{"code": "stalls", "datatype": "number", "required": true, "order": 1, "description_zh": "摊位数量", "description_en": "Number of stalls", "values": []}]],
 "0303": ["乱停车", [{"code": "plate", "datatype": "string", "required": false, "order": 1, "description_zh": "车牌号", "description_en": "Number plate", "values": []}]],
 "0501": ["消防隐患", [{"code": "hazards", "datatype": "multivaluelist", "required": true, "order": 1, "description_zh": "隐患类型", "description_en": "What was seen", "values": [{"key": "exit", "name_zh": "安全出口或通道堵塞", "name_en": "Blocked exit or passage"}, {"key": "fuel", "name_zh": "堆放易燃物", "name_en": "Stored fuel or flammables"}, {"key": "wiring", "name_zh": "私拉乱接电线", "name_en": "Unsafe wiring"}, {"key": "ebike", "name_zh": "电动车室内或楼道充电", "name_en": "E-bike charged indoors"}]}]],
 "0502": ["燃气隐患", [{"code": "smell_now", "datatype": "singlevaluelist", "required": true, "order": 1, "description_zh": "现在是否仍有燃气味", "description_en": "Can gas still be smelt now", "values": [{"key": "yes", "name_zh": "是", "name_en": "Yes"}, {"key": "no", "name_zh": "否", "name_en": "No"}]}]],
 "0602": ["独居老人关怀", [{"code": "age", "datatype": "number", "required": false, "order": 1, "description_zh": "老人年龄", "description_en": "Age of the resident", "values": []}, {"code": "needs", "datatype": "multivaluelist", "required": false, "order": 2, "description_zh": "需要的帮助", "description_en": "Help needed", "values": [{"key": "meals", "name_zh": "助餐", "name_en": "Meals"}, {"key": "medical", "name_zh": "就医", "name_en": "Medical visits"}, {"key": "cleaning", "name_zh": "保洁", "name_en": "Cleaning"}, {"key": "company", "name_zh": "陪伴", "name_en": "Company"}]}]]
}""")
"""The questions shipped with this version, by category code: (its Chinese name, its questions).
A fixed copy, so this migration does the same whatever later versions ship."""


def upgrade() -> None:
    op.add_column("incident_categories", sa.Column("attributes", JSONB(), nullable=False,
                                                   server_default=sa.text("'[]'::jsonb")))
    op.add_column("incidents", sa.Column("attributes", JSONB(), nullable=False, server_default=sa.text("'{}'::jsonb")))
    conn = op.get_bind()
    for code, (name_zh, questions) in SHIPPED_QUESTIONS.items():
        conn.execute(sa.text("UPDATE incident_categories SET attributes = CAST(:a AS jsonb) "
                             "WHERE code = :c AND name_zh = :zh"),
                     {"a": json.dumps(questions, ensure_ascii=False), "c": code, "zh": name_zh})


def downgrade() -> None:
    op.drop_column("incidents", "attributes")
    op.drop_column("incident_categories", "attributes")
