"""Hand-written exchanges placed once each in the sample: formatted text, links, contact details.

They give every reader and privacy feature something real to chew on: entity lists (bold, italic,
link, text_link, mention, hashtag, code), phone numbers and emails both as entities and as plain
text, one Luhn-valid card number, and a pinned plan in the group. `("pin", "")` pins the line
before it. The text is already in each person's style.
"""

from __future__ import annotations

Exchange = list[tuple[str, str]]

SCRIPTED: dict[str, list[Exchange]] = {
    "sam": [
        [("sam", "My new number is <phone:+1 415 555 0142>, in case you need it. The old one "
                 "stopped working last week, which was rather inconvenient."),
         ("alex", "saved it 👍")],
        [("sam", "If you need anything for the project, my colleague Anna is at "
                 "anna.berg@example.com, and she is genuinely lovely to work with."),
         ("alex", "oh nice thanks"), ("alex", "ill email her tmrw")],
        [("sam", "You <bold:really> have to read <text_link:the article I mentioned|"
                 "https://www.theatlantic.com/technology/archive/2024/03/> before Friday, "
                 "because I would love to hear what you think of it."),
         ("alex", "ok ok ill read it lol")],
    ],
    "dima": [
        [("dima", "Записывай мой новый номер: <phone:+7 916 555-12-34>"),
         ("alex", "записал 👍")],
        [("dima", "Почта для пропуска в офис: dima.volkov@example.ru"),
         ("alex", "ок скинул туда лол")],
        [("dima", "Вот тот ролик, про который говорил <link:https://youtu.be/kQ7bW3xP1aE>"),
         ("alex", "ахахах огонь")],
    ],
    "jake": [
        [("jake", "CALL ME AT 628-555-0177 IF YOU GET LOST!!!"), ("alex", "will do lol")],
        [("jake", "CHECK THIS OUT!!!"), ("jake",
          "<link:https://www.youtube.com/watch?v=3fZq8LwT9mY>"),
         ("alex", "lmaooo"), ("alex", "how did he even land that 😂")],
    ],
    "nora": [
        [("nora", "work email: <email:nora.lind@example.com>."), ("alex", "got it")],
        [("nora", "tickets paid. card <bank_card:4539 1488 0343 6467>. send 45 back."),
         ("alex", "sending now lol"), ("nora", "thanks.")],
    ],
    "priya": [
        [("priya",
          "omg follow <mention:@foodie_priya> for the best ramen pics 😍🍜 <hashtag:#foodie>"),
         ("alex", "followed lol")],
        [("priya", "the restaurant's number is (415) 555-0199 if you want to book 😊"),
         ("alex", "booking now haha")],
        [("priya",
          "this is <italic:the> recipe 🤤 <link:https://www.bbcgoodfood.com/recipes/ramen>"),
         ("alex", "saving this lol")],
    ],
    "group": [
        [("sam", "<bold:Plan>: Saturday at 7 at Luigi's, then bowling. Please do not be late."),
         ("pin", ""), ("jake", "<mention:@alexmorgan> YOU'RE ON SNACKS!!!"),
         ("alex", "ugh fine lol")],
        [("sam", "The address is 12 Harbour Street, flat 4. My number is "
                 "<phone:+1 415 555 0142> if anyone gets lost on the way."),
         ("priya", "see you there!! 🎉✨")],
        [("alex", "just ran <code:git push --force> on a friday lol"),
         ("jake", "BRO!!!"), ("nora", "brave.")],
    ],
}
